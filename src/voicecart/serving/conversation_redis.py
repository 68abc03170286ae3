"""Conversation turns in Redis, so a follow-up can land on any replica (or worker process).

One key per conversation (``<prefix><conversation_id>``) holding the turn as JSON, written with
the conversation TTL (``SET ... EX``). Reads and writes have a short socket timeout and no
retries; failures feed a circuit breaker (``engine.CircuitBreaker``), so a Redis that is down or
hung costs a turn at most one timeout, and after that nothing: turns are answered as new requests
and say ``conversation_unavailable``.
"""

from __future__ import annotations

import json
from typing import Any

from voicecart.serving.engine import CircuitBreaker, ConversationUnavailable, Turn


class RedisConversationStore:
    def __init__(self, url: str, ttl_s: float, key_prefix: str = "voicecart:conversation:", timeout_s: float = 0.05,
                 settings: Any = None, health: Any = None) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.ttl_s = ttl_s
        self.prefix = key_prefix
        options = dict(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
                       retry_on_timeout=False, health_check_interval=0)
        if "://" in url:
            self.url = url
            self.client = redis.Redis.from_url(url, **options)
        else:  # Feast's form, as features.online.url holds it: host:port[,password=...][,ssl=true][,db=N]
            address, *pairs = url.split(",")
            extra = dict(p.split("=", 1) for p in pairs if "=" in p)
            host, _, port = address.rpartition(":")
            self.url = f"redis://{address}"  # never the password (it is printed)
            self.client = redis.Redis(host=host or address, port=int(port or 6379), password=extra.get("password"),
                                      ssl=extra.get("ssl", "false").lower() == "true", db=int(extra.get("db", 0)),
                                      **options)
        failures = getattr(settings, "breaker_failures", 3)
        retry_s = getattr(settings, "breaker_retry_s", 2.0)
        self.breaker = CircuitBreaker("conversations", self.client.ping, failures, retry_s)
        if health is not None:
            health.add(self.breaker)

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        if not self.breaker.allow():
            raise ConversationUnavailable(f"conversation store {self.url}: breaker open")
        try:
            out = fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - every redis error means the same here
            self.breaker.failure(f"{type(exc).__name__}: {exc}"[:300])
            raise ConversationUnavailable(f"conversation store {self.url}: {type(exc).__name__}") from None
        self.breaker.success()
        return out

    def get(self, conversation_id: str, customer_id: str) -> Turn | None:
        raw = self._call(self.client.get, self.prefix + conversation_id)
        if raw is None:
            return None
        try:
            turn = Turn.from_dict(json.loads(raw))
        except (ValueError, TypeError, KeyError):  # a foreign or older value under our key: a new conversation
            return None
        return turn if turn.customer_id == customer_id else None

    def put(self, conversation_id: str, turn: Turn) -> None:
        self._call(self.client.set, self.prefix + conversation_id, json.dumps(turn.to_dict()),
                   ex=max(1, round(self.ttl_s)))
