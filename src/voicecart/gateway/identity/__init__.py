"""Platform user -> retailer ``customer_id``: one small interface, one module per backend.

A voice platform names its user (an Alexa ``userId`` or linked-account ``accessToken``, the
Dialogflow session parameter the agent's account linking sets); the retailer knows a customer.
The link is stored by (platform, a SHA-256 digest of the user), so neither tokens nor platform
ids are kept in clear. Backends: :mod:`.sqlite` (the local default) and :mod:`.redis` (the online
store's Redis), chosen by the ``type:`` of ``gateway.identity``.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

PLATFORMS = ("alexa", "dialogflow")


class IdentityError(Exception):
    """The identity store cannot be read or written (the message says which and why)."""


class IdentityStore(Protocol):
    async def customer_for(self, platform: str, user: str) -> str | None:
        """The linked customer_id, or None; raises :class:`IdentityError` when the store is down."""
        ...

    async def link(self, platform: str, user: str, customer_id: str) -> None: ...

    async def unlink(self, platform: str, user: str) -> bool:
        """True when a link was removed."""
        ...

    async def close(self) -> None: ...


def user_key(platform: str, user: str) -> str:
    """The stored key of a platform user: ``<platform>:<sha256 of the user>``."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform: {platform!r} is not one of {', '.join(PLATFORMS)}")
    if not user:
        raise ValueError("user: must not be empty")
    return f"{platform}:{hashlib.sha256(user.encode()).hexdigest()}"


def open_identity(config: object) -> IdentityStore:
    """The backend the config's ``type`` names."""
    from voicecart.gateway.identity.redis import RedisIdentityConfig, RedisIdentityStore
    from voicecart.gateway.identity.sqlite import SqliteIdentityConfig, SqliteIdentityStore

    if isinstance(config, SqliteIdentityConfig):
        return SqliteIdentityStore(config)
    if isinstance(config, RedisIdentityConfig):
        return RedisIdentityStore(config)
    raise TypeError(f"identity: unknown backend config {type(config).__name__}")
