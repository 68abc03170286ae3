"""Typed errors of the serving layer; every one maps to a 4xx or to a fallback, never to a 5xx."""

from __future__ import annotations


class ServingError(Exception):
    """Base of the errors raised by voicecart.serving."""


class BadRequest(ServingError):
    """The caller sent something we cannot use; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BundleError(ServingError):
    """A model bundle directory is missing a file or holds an invalid one (the message names it)."""


class PredictorUnavailable(ServingError):
    """The remote predictor (Triton) did not answer in time or answered with an error."""


class ProfileUnavailable(ServingError):
    """The online feature store did not answer in time or failed."""
