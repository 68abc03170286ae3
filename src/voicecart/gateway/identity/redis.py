"""The cluster identity store: keys in the online store's Redis, shared by every gateway replica."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from voicecart.gateway.identity import IdentityError, user_key


class RedisIdentityConfig(BaseModel):
    type: Literal["redis"]
    url: str = "localhost:6379"
    """The online store's Redis: Feast's ``host:port[,password=...][,db=N][,ssl=true]`` or a ``redis://`` URL."""
    key_prefix: str = Field(default="voicecart:identity:", min_length=1)
    timeout_s: float = Field(default=0.25, gt=0)
    """Connect and read timeout; no retries (an unreachable store means a non-personal answer)."""


def connection_kwargs(url: str) -> dict[str, Any]:
    """Feast's connection string (or a redis:// URL) -> redis-py keyword arguments."""
    if url.startswith(("redis://", "rediss://")):
        return {"url": url}
    address, *params = [p.strip() for p in url.split(",")]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise IdentityError(f"identity.url {address!r} is not host:port")
    out: dict[str, Any] = {"host": host, "port": int(port)}
    for param in params:
        key, _, value = param.partition("=")
        if key == "password":
            out["password"] = value
        elif key == "db":
            out["db"] = int(value)
        elif key == "ssl":
            out["ssl"] = value.lower() == "true"
        elif key == "username":
            out["username"] = value
    return out


class RedisIdentityStore:
    def __init__(self, config: RedisIdentityConfig) -> None:
        import redis
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.config = config
        kwargs = connection_kwargs(config.url)
        common = {"socket_timeout": config.timeout_s, "socket_connect_timeout": config.timeout_s,
                  "retry": Retry(NoBackoff(), 0), "decode_responses": True}
        url = kwargs.pop("url", None)
        self._redis = aioredis.Redis.from_url(url, **common) if url else aioredis.Redis(**kwargs, **common)
        self._errors = (OSError, redis.RedisError)

    def _key(self, platform: str, user: str) -> str:
        return self.config.key_prefix + user_key(platform, user)

    async def customer_for(self, platform: str, user: str) -> str | None:
        try:
            return await self._redis.get(self._key(platform, user))
        except self._errors as exc:
            raise IdentityError(f"identity store (Redis): {type(exc).__name__}: {exc}") from None

    async def link(self, platform: str, user: str, customer_id: str) -> None:
        try:
            await self._redis.set(self._key(platform, user), customer_id)
        except self._errors as exc:
            raise IdentityError(f"identity store (Redis): {type(exc).__name__}: {exc}") from None

    async def unlink(self, platform: str, user: str) -> bool:
        try:
            return bool(await self._redis.delete(self._key(platform, user)))
        except self._errors as exc:
            raise IdentityError(f"identity store (Redis): {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        await self._redis.aclose()
