"""The shared mapping's pure parts: slots -> words, session state and staleness, when to ask back,
conversation ids, identity keys and backends' config, the settings section."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from voicecart.config import load_settings
from voicecart.gateway.identity import user_key
from voicecart.gateway.identity.redis import RedisIdentityConfig, connection_kwargs
from voicecart.gateway.identity.sqlite import SqliteIdentityConfig, SqliteIdentityStore
from voicecart.gateway.mapping import (Action, CartLine, Conversations, SessionState, VoiceTurn, conversation_id,
                                       needs_confirmation, utterance_from_slots)
from voicecart.schemas import Intent, ProductRef, ResolveResponse


@pytest.mark.parametrize("action, product, quantity, words", [
    ("add", "milk", None, "add milk"), ("add", "milk", "2", "add 2 milk"), ("add", "milk", 1.5, "add 1.5 milk"),
    ("add", " milk ", "", "add milk"), ("add", "milk", "lots", "add milk"), ("add", "milk", "-3", "add milk"),
    ("remove", "eggs", None, "remove eggs"), ("ask", "rice", None, "do you have rice"),
    ("add", "", "2", None), ("add", None, None, None), ("add", "   ", None, None),
])
def test_slots_become_words_the_parser_reads(action, product, quantity, words):
    assert utterance_from_slots(action, product, quantity) == words


def conversations(ttl_s: float = 300.0) -> Conversations:
    return Conversations(endpoint=None, identity=None, platform_session_ttl_s=ttl_s)  # type: ignore[arg-type]


def test_a_fresh_line_is_kept_and_an_old_one_is_stale():
    state = SessionState(line=CartLine(request_id="r", product_id="P", at=1000.0), hinted=True).model_dump()
    fresh, stale = conversations().session_state(state, now=1200.0)
    assert fresh.line is not None and not stale
    old, stale = conversations().session_state(state, now=1400.0)
    assert old.line is None and stale and old.hinted  # the hint is not repeated after a stale line
    future, stale = conversations().session_state(state, now=900.0)
    assert future.line is None and stale


@pytest.mark.parametrize("raw", ["a string", 7, {"line": {"request_id": ""}}, {"line": {"product_id": "P"}},
                                 {"line": "x"}, {"line": {"request_id": "r", "product_id": "P", "at": "soon"}}])
def test_state_that_does_not_parse_is_stale_not_an_error(raw):
    state, stale = conversations().session_state(raw, now=0.0)
    assert state.line is None and stale


def test_no_state_is_a_new_session():
    state, stale = conversations().session_state(None, now=0.0)
    assert state == SessionState() and not stale


def answer(personalized: bool, fallbacks: list[str]) -> ResolveResponse:
    return ResolveResponse(request_id="r", intent=Intent.add, product=ProductRef(id="P"), confirmation="Adding P.",
                           personalized=personalized, model_version="v1", latency_ms=1.0, fallbacks=fallbacks)


def test_answers_that_are_not_personal_or_fell_back_ask_back():
    assert not needs_confirmation(answer(True, []))
    assert needs_confirmation(answer(False, ["no_profile"]))
    assert needs_confirmation(answer(True, ["deadline"]))


def test_one_platform_session_is_one_bounded_engine_conversation():
    turn = VoiceTurn("dialogflow", "projects/p/locations/l/agents/a/sessions/" + "s" * 300, (), Action.resolve)
    conv = conversation_id(turn)
    assert conv == conversation_id(turn) and len(conv) <= 128 and conv.startswith("dialogflow-")
    assert conv != conversation_id(VoiceTurn("alexa", turn.session, (), Action.resolve))


def test_identity_keys_never_hold_the_user_in_clear():
    key = user_key("alexa", "amzn1.ask.account.SECRET")
    assert key.startswith("alexa:") and "SECRET" not in key and len(key) == len("alexa:") + 64
    with pytest.raises(ValueError, match="platform"):
        user_key("siri", "x")
    with pytest.raises(ValueError, match="user"):
        user_key("alexa", "")


def test_sqlite_links_round_trip_and_store_no_clear_text(tmp_path):
    path = tmp_path / "identity.sqlite"
    store = SqliteIdentityStore(SqliteIdentityConfig(path=path))

    async def go() -> tuple:
        await store.link("alexa", "token-abc", "C1")
        await store.link("alexa", "token-abc", "C2")  # relinking moves the user
        found = await store.customer_for("alexa", "token-abc")
        other_platform = await store.customer_for("dialogflow", "token-abc")
        removed, again = await store.unlink("alexa", "token-abc"), await store.unlink("alexa", "token-abc")
        return found, other_platform, removed, again, await store.customer_for("alexa", "token-abc")

    assert asyncio.run(go()) == ("C2", None, True, False, None)
    asyncio.run(store.link("alexa", "token-abc", "C3"))
    rows = sqlite3.connect(path).execute("SELECT * FROM identity_links").fetchall()
    assert rows and all("token-abc" not in str(r) for r in rows)


@pytest.mark.parametrize("url, kwargs", [
    ("localhost:6379", {"host": "localhost", "port": 6379}),
    ("redis-master.ns.svc:6380,password=p@ss,db=2,ssl=true",
     {"host": "redis-master.ns.svc", "port": 6380, "password": "p@ss", "db": 2, "ssl": True}),
    ("redis://:pw@r:6379/1", {"url": "redis://:pw@r:6379/1"}),
])
def test_feast_connection_strings_become_redis_arguments(url, kwargs):
    assert connection_kwargs(url) == kwargs


def test_identity_backend_is_chosen_by_type_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICECART_GATEWAY__IDENTITY__PATH", str(tmp_path / "id.sqlite"))
    assert isinstance(load_settings().gateway.identity, SqliteIdentityConfig)  # sqlite is the default type
    monkeypatch.delenv("VOICECART_GATEWAY__IDENTITY__PATH")
    monkeypatch.setenv("VOICECART_GATEWAY__IDENTITY__TYPE", "redis")
    monkeypatch.setenv("VOICECART_GATEWAY__IDENTITY__URL", "r:6379,password=$(X)")
    identity = load_settings().gateway.identity
    assert isinstance(identity, RedisIdentityConfig) and identity.url == "r:6379,password=$(X)"


def test_a_bad_gateway_setting_is_named(monkeypatch):
    from voicecart.config import ConfigError

    monkeypatch.setenv("VOICECART_GATEWAY__ENDPOINT__URL", "ftp://nope")
    with pytest.raises(ConfigError, match="gateway.endpoint.url"):
        load_settings()


@pytest.mark.slow  # a fresh interpreter importing the SDKs: seconds, not milliseconds
def test_the_gateway_never_imports_the_engine_or_kserve():
    import subprocess
    import sys

    code = ("import sys, voicecart.gateway.app, voicecart.gateway.alexa, voicecart.gateway.dialogflow, "
            "voicecart.cli.gateway; print(sorted(m for m in sys.modules if m == 'kserve' or "
            "m.startswith(('kserve.', 'voicecart.serving', 'voicecart.ranking', 'voicecart.features'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
