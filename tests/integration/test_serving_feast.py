"""The server on a real Feast online store (SQLite): one profile read per request, feedback pushed
to Feast, a kill -9 between the feedback 2xx and its push replayed by the restarted server, and
a store that is down answered by popularity."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from voicecart.schemas.times import from_epoch
from voicecart.config import FeatureSettings
from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.export.model import bundle_from_dataset
from voicecart.serving.bundle import load_serving_model
from voicecart.serving.local import LocalServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = "/v1/models/voicecart:predict"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from voicecart.features.store import publish

    root = tmp_path_factory.mktemp("feast")
    tables, _ = generate(SyntheticConfig(n_customers=200, seed=11))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = bundle_from_dataset(root / "data", root / "bundle", epochs=1)
    as_of = from_epoch(load_serving_model(bundle).now)
    settings = FeatureSettings(store_dir=root / "store")
    publish(root / "data", settings, as_of)
    customer = str(tables.customers.column("customer_id")[3])
    return {"root": root, "bundle": bundle, "settings": settings, "customer": customer,
            "env": {"VOICECART_FEATURES__STORE_DIR": str(settings.store_dir)}}


def _profile(settings: FeatureSettings, customer: str):
    from voicecart.features.online import ProfileStore

    return ProfileStore.from_settings(settings).get(customer)


def _pushed(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT event_id, pushed_at FROM feedback_events").fetchall())


def test_feedback_survives_kill_9_between_2xx_and_push_and_the_restart_replays_it(world, tmp_path):
    """Also: the restarted server answers from the Feast profile (one read per request)."""
    db = tmp_path / "fb.sqlite"
    customer = world["customer"]
    before = _profile(world["settings"], customer)
    product = next(p for p in ("P00000000", "P00000001", "P00000002") if p not in before.product_ids[:1])
    old_count = dict(zip(before.product_ids, before.product_counts)).get(product, 0.0)
    event = {"event_id": "ev-kill-9", "request_id": "r1", "customer_id": customer, "product_id": product,
             "kind": "bought", "timestamp": datetime.now(timezone.utc).isoformat()}

    first = LocalServer(world["bundle"], "--feedback-db", str(db), log_path=tmp_path / "first.log",
                        env={**world["env"], "VOICECART_SERVING__FEEDBACK_PUSH_INTERVAL_S": "120"}).start()
    try:
        r = httpx.post(first.url + "/v1/feedback", json=event, timeout=10)
        assert r.status_code == 202
        assert _pushed(db) == {"ev-kill-9": None}  # on disk before the 2xx, not pushed yet
    finally:
        first.kill()  # kill -9 between the 2xx and the push
    assert dict(zip(*[_profile(world["settings"], customer).product_ids,
                      _profile(world["settings"], customer).product_counts])).get(product, 0.0) == old_count

    with LocalServer(world["bundle"], "--feedback-db", str(db), "--deadline-ms", "2000", env=world["env"],
                     log_path=tmp_path / "second.log") as again:
        for _ in range(150):
            if _pushed(db)["ev-kill-9"] is not None:
                break
            time.sleep(0.1)
        assert _pushed(db)["ev-kill-9"] is not None, (tmp_path / "second.log").read_text()[-2000:]
        after = _profile(world["settings"], customer)
        assert dict(zip(after.product_ids, after.product_counts))[product] == old_count + 1
        dup = httpx.post(again.url + "/v1/feedback", json=event, timeout=10)
        assert dup.status_code == 200 and dup.json()["duplicate"] is True
        r = httpx.post(again.url + PREDICT, json={"instances": [{"customer_id": customer, "utterance": "add milk"}]},
                       timeout=10)
        (answer,) = r.json()["predictions"]
        assert r.status_code == 200 and answer["personalized"] is True and answer["fallbacks"] == [], answer
    assert len(_pushed(db)) == 1


def test_store_down_answers_by_popularity_never_a_5xx(world, tmp_path):
    env = {"VOICECART_FEATURES__STORE_DIR": str(tmp_path / "no-store-here")}
    with LocalServer(world["bundle"], "--feedback-db", str(tmp_path / "fb.sqlite"), env=env,
                     log_path=tmp_path / "server.log") as srv:
        r = httpx.post(srv.url + PREDICT, json={"instances": [{"customer_id": world["customer"],
                                                               "utterance": "add bread"}]}, timeout=10)
        fb = httpx.post(srv.url + "/v1/feedback", json={
            "event_id": "e-down", "request_id": "r", "customer_id": world["customer"], "product_id": "P00000000",
            "kind": "bought", "timestamp": datetime.now(timezone.utc).isoformat()}, timeout=10)
    (answer,) = r.json()["predictions"]
    assert r.status_code == 200 and answer["product"] is not None
    assert answer["personalized"] is False and answer["fallbacks"] == ["profile_unavailable"]
    assert fb.status_code == 202  # logged durably; pushed when the store is back
    assert fb.json()["flags"] == ["customer_unchecked"]  # the store could not say whether it knows them
    assert _pushed(tmp_path / "fb.sqlite") == {"e-down": None}
