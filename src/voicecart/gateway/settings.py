"""The ``gateway:`` section of the voicecart settings (env ``VOICECART_GATEWAY__*``, YAML, CLI flags)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Discriminator, Field, SecretStr, Tag, model_validator

from voicecart.gateway.identity.redis import RedisIdentityConfig
from voicecart.gateway.identity.sqlite import SqliteIdentityConfig



def _identity_type(value: object) -> str:
    return str(value.get("type", "sqlite") if isinstance(value, dict) else getattr(value, "type", "sqlite"))


IdentityConfig = Annotated[Annotated[SqliteIdentityConfig, Tag("sqlite")] | Annotated[RedisIdentityConfig, Tag("redis")],
                           Discriminator(_identity_type)]
"""Where platform users are linked to retailer customers; chosen by ``type:`` (sqlite, the default | redis)."""


class EndpointSettings(BaseModel):
    """The resolve endpoint (the InferenceService) and the feedback intake, over HTTP."""

    url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://[^/\s]+(/[^\s]*)?$")
    """Base URL of the endpoint: ``POST {url}/v1/models/{model_name}:predict``."""
    model_name: str = Field(default="voicecart", pattern=r"^[A-Za-z0-9_.-]+$")
    host_header: str | None = None
    """Host header to send (an InferenceService behind an ingress gateway is routed by host)."""
    feedback_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+(/[^\s]*)?$")
    """Base URL of the feedback intake (``POST {feedback_url}/v1/feedback``); default: ``url``."""
    timeout_s: float = Field(default=1.0, gt=0, le=4.0)
    """Per call; the platforms give the whole turn 5 s (Dialogflow) or 8 s (Alexa)."""
    feedback_retries: int = Field(default=8, ge=0, le=20)
    """Attempts after the first for a feedback event the intake did not acknowledge (5xx, unreachable)."""


class DialogflowSettings(BaseModel):
    """The Dialogflow CX webhook (``POST /dialogflow/cx/webhook``)."""

    enabled: bool = False
    auth: Literal["header", "bearer"] = "header"
    """``header``: the agent's webhook sends ``<header>: <secret>``; ``bearer``: ``Authorization: Bearer <secret>``."""
    header: str = Field(default="X-Voicecart-Webhook-Secret", pattern=r"^[A-Za-z0-9-]+$")
    secret: SecretStr | None = None
    """The shared secret configured in the agent's webhook (from a Kubernetes Secret in the chart)."""
    user_parameter: str = Field(default="voicecart_user_id", min_length=1, max_length=128)
    """Session parameter the agent's account linking sets to the platform user id."""

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> "DialogflowSettings":
        if self.enabled and (self.secret is None or len(self.secret.get_secret_value()) < 16):
            raise ValueError("secret: required (at least 16 characters) when the Dialogflow webhook is enabled")
        return self


class AlexaSettings(BaseModel):
    """The Alexa custom-skill endpoint (``POST /alexa``)."""

    enabled: bool = False
    skill_ids: list[str] = Field(default_factory=list)
    """The skill's applicationId(s); a request for any other skill is refused."""
    cert_dir: Path | None = None
    """Local copies of Alexa's signing certificate chains, named like the last part of their URL
    (for pods without internet egress); unset: fetched from the validated ``SignatureCertChainUrl``."""
    trust_roots: Path | None = None
    """PEM file of the root certificates a chain must lead to; unset: certifi's Mozilla bundle."""
    timestamp_tolerance_s: float = Field(default=150.0, gt=0, le=150.0)
    """Alexa's rule: a request more than 150 s from now is refused (replay protection)."""
    skill_name: str = Field(default="the shop", min_length=1, max_length=60)
    """How the skill names itself in speech ("Welcome to <skill_name>")."""

    @model_validator(mode="after")
    def _skill_id_when_enabled(self) -> "AlexaSettings":
        if self.enabled and not self.skill_ids:
            raise ValueError("skill_ids: at least one skill id is required when the Alexa endpoint is enabled")
        return self


class GatewaySettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    endpoint: EndpointSettings = EndpointSettings()
    dialogflow: DialogflowSettings = DialogflowSettings()
    alexa: AlexaSettings = AlexaSettings()
    identity: IdentityConfig = SqliteIdentityConfig()
    session_ttl_s: float = Field(default=300.0, gt=0)
    """A session's remembered answer older than this is stale (keep <= the engine's conversation_ttl_s)."""
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    """Larger bodies get a 413 before anything parses them."""
