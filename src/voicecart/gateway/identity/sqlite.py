"""The local identity store: one SQLite table (the default on one machine)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from voicecart.gateway.identity import IdentityError, user_key


class SqliteIdentityConfig(BaseModel):
    type: Literal["sqlite"] = "sqlite"
    path: Path = Path("runs/gateway/identity.sqlite")


class SqliteIdentityStore:
    """Reads are one indexed lookup on a local file (microseconds), so they run inline."""

    def __init__(self, config: SqliteIdentityConfig) -> None:
        self.path = config.path
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS identity_links (user_key TEXT PRIMARY KEY, "
                             "customer_id TEXT NOT NULL, linked_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        except (OSError, sqlite3.Error) as exc:
            raise IdentityError(f"identity store {self.path}: {exc}") from None

    def _run(self, sql: str, args: tuple) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise IdentityError(f"identity store {self.path}: {exc}") from None

    async def customer_for(self, platform: str, user: str) -> str | None:
        row = self._run("SELECT customer_id FROM identity_links WHERE user_key = ?", (user_key(platform, user),)).fetchone()
        return row[0] if row else None

    async def link(self, platform: str, user: str, customer_id: str) -> None:
        self._run("INSERT INTO identity_links (user_key, customer_id) VALUES (?, ?) ON CONFLICT(user_key) "
                  "DO UPDATE SET customer_id = excluded.customer_id, linked_at = CURRENT_TIMESTAMP",
                  (user_key(platform, user), customer_id))

    async def unlink(self, platform: str, user: str) -> bool:
        return self._run("DELETE FROM identity_links WHERE user_key = ?", (user_key(platform, user),)).rowcount > 0

    async def close(self) -> None:
        with self._lock:
            self._db.close()
