"""Schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS).

A feedback timestamp must lie within the server's window around the time it receives the event
(the schema says so in words: JSON Schema cannot state "within 30 days of now"). Generated
timestamps that are well-formed are moved to now, so a valid case stays valid; malformed ones are
left for the server to refuse.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import schemathesis

from voicecart.schemas.api import TIMESTAMP_PATTERN

_TS = re.compile(TIMESTAMP_PATTERN)


@schemathesis.hook
def map_case(context, case):  # noqa: ANN001, ANN201 - schemathesis' hook signature (every phase runs it)
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("timestamp"), str) and _TS.search(body["timestamp"]):
        case.body = {**body, "timestamp": datetime.now(timezone.utc).isoformat()}
    return case
