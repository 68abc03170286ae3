"""Typed errors of the feature store: each message names the thing and what to do."""

from __future__ import annotations


class FeatureStoreError(RuntimeError):
    """A feature-store operation could not be done as asked (bad definition, bad window, bad input)."""


class FeatureDefinitionError(FeatureStoreError):
    """A feature view does not match its source (e.g. a column the source file lacks)."""


class FeatureStoreUnavailable(FeatureStoreError):
    """The online store cannot be reached or read; serving should answer without personalization."""
