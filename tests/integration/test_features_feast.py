"""Real Feast on SQLite: the CLI builds, applies and materializes; reads, pushes, point-in-time joins."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.unit.test_features_sql import toy_dataset
from voicecart.cli import app
from voicecart.config import FeatureSettings
from voicecart.data import connect
from voicecart.features import FeatureDefinitionError, FeatureStoreUnavailable, profiles_as_of, write_embeddings
from voicecart.features.online import ProfileStore, with_purchase
from voicecart.features.store import definitions, materialize, offline_dir, open_store
from voicecart.features.store import apply as apply_features

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UTC = timezone.utc
AS_OF = datetime(2001, 1, 21)  # midnight after the toy dataset's last order


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["features", *args])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, output
    return output


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A toy dataset built, applied and materialized through the CLI, with daily snapshots."""
    root = tmp_path_factory.mktemp("feast")
    data = toy_dataset(root / "data")
    store_dir = root / "store"
    out = cli("build", "--data", str(data), "--store-dir", str(store_dir), "--snapshot-every-days", "1")
    assert "customer_profile" in out and "product_features" in out
    out = cli("apply", "--store-dir", str(store_dir))
    assert "4 views" in out and "serving_profile" in out
    out = cli("materialize", "--store-dir", str(store_dir), "--start", "2000-01-01", "--end", "2002-01-01")
    assert "customer_profile │ 2 │" in out and "product_features │ 4 │" in out, out
    return FeatureSettings(store_dir=store_dir), data


def test_online_profile_is_the_latest_offline_row(store):
    settings, data = store
    con = connect(data)
    expected = {r["customer_id"]: r for r in profiles_as_of(con, AS_OF).to_pylist()}
    profiles = ProfileStore.from_settings(settings)
    got = profiles.get("c1")
    assert got is not None and got.product_ids == expected["c1"]["product_ids"]
    for field in ("order_count", "mean_basket_size", "last_order_ts", "product_counts", "product_last_ts"):
        assert getattr(got, field) == pytest.approx(expected["c1"][field]), field
    assert "p9" in got.product_ids and got.order_count == 4
    assert profiles.get("c3") is None, "no orders: no profile"
    assert profiles.get("never-seen") is None


def test_show_prints_the_same_profile(store):
    settings, _ = store
    shown = json.loads(CliRunner().invoke(app, ["features", "show", "--customer", "c1", "--json", "--store-dir",
                                                str(settings.store_dir)]).stdout)
    assert shown == ProfileStore.from_settings(settings).get("c1").model_dump(mode="json")


def test_training_rows_never_see_a_later_purchase(store):
    """The planted order o5 (c1 buys p9 on 2001-01-20 12:00) must not reach examples stamped before it."""
    settings, _ = store
    entities = pd.DataFrame({
        "customer_id": ["c1", "c1", "c1", "c1"],
        "event_timestamp": [datetime(2001, 1, 10, tzinfo=UTC), datetime(2001, 1, 20, 6, tzinfo=UTC),
                            datetime(2001, 1, 20, 12, tzinfo=UTC), datetime(2001, 1, 21, 1, tzinfo=UTC)],
    })
    job = open_store(settings, must_exist=True).get_historical_features(
        entity_df=entities, features=["customer_profile:product_ids", "customer_profile:order_count"])
    rows = job.to_df().sort_values("event_timestamp").to_dict("records")
    assert [int(r["order_count"]) for r in rows] == [2, 3, 3, 4]
    assert ["p9" in list(r["product_ids"]) for r in rows] == [False, False, False, True]
    assert list(rows[0]["product_ids"]) == ["p1", "p3", "p2"], "2001-01-10: o1 and o2 only, o3 is a day later"


def test_embeddings_written_by_cstar_are_served_in_the_same_read(store):
    settings, _ = store
    vectors = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, 1.0]], dtype=np.float32)
    write_embeddings(offline_dir(settings), ["c1", "c2"], vectors, AS_OF)
    materialize(settings, datetime(2000, 1, 1), datetime(2002, 1, 1), views=["customer_embedding"])
    got = ProfileStore.from_settings(settings).get("c1")
    assert got.embedding == pytest.approx([0.5, -1.0, 2.0])
    assert got.product_ids, "profile and embedding come back together"


def feast_row(profiles: ProfileStore, customer: str) -> dict:
    """What Feast's own ``get_online_features`` answers for the serving feature service (the reference)."""
    out = profiles._store.get_online_features(features=profiles._service,  # noqa: SLF001
                                              entity_rows=[{"customer_id": customer}]).to_dict()
    return {k: v[0] for k, v in out.items() if k != "customer_id"}


def test_the_profile_read_answers_what_get_online_features_answers(store):
    """The served read (the provider's online_read per view of the service) against Feast's full path:
    a customer with a profile and an embedding, one with a profile only, one unknown."""
    settings, _ = store
    write_embeddings(offline_dir(settings), ["c1"], np.array([[0.25, -0.5, 1.0]], dtype=np.float32), AS_OF)
    materialize(settings, datetime(2000, 1, 1), datetime(2002, 1, 1), views=["customer_embedding"])
    profiles = ProfileStore.from_settings(settings)
    for customer in ("c1", "c2", "nobody"):
        assert profiles.row(customer) == feast_row(profiles, customer), customer
    assert profiles.row("c1")["embedding"] == pytest.approx([0.25, -0.5, 1.0])
    assert profiles.row("c1")["product_ids"], "a real row, not two empty answers"
    assert all(v is None for v in profiles.row("nobody").values())


def test_a_pushed_purchase_is_read_back_online(store):
    settings, _ = store
    profiles = ProfileStore.from_settings(settings)
    before = profiles.get("c2")
    assert before.product_ids == ["p3"]
    updated = with_purchase(before, "p1", datetime.now(UTC))
    assert profiles.push([updated]) == 1
    after = profiles.get("c2")
    assert after.product_ids == ["p1", "p3"], "equal counts: the most recent purchase first"
    assert after.product_counts == [1.0, 1.0] and after.product_last_ts[0] > before.product_last_ts[0]


def test_a_view_naming_a_missing_column_is_refused_and_the_registry_is_untouched(store):
    from feast import Field
    from feast.types import Float64

    settings, _ = store
    registry = settings.store_dir / "registry.db"
    before = registry.read_bytes()
    objects = definitions(settings)
    view = next(o for o in objects if getattr(o, "name", "") == "product_features")
    view.schema.append(Field(name="shelf_position", dtype=Float64))
    view.features.append(Field(name="shelf_position", dtype=Float64))
    with pytest.raises(FeatureDefinitionError, match="'product_features'.*shelf_position.*product_features.parquet"):
        apply_features(settings, objects)
    assert registry.read_bytes() == before


def test_apply_before_build_says_what_to_run_and_writes_no_registry(tmp_path):
    settings = FeatureSettings(store_dir=tmp_path / "empty")
    with pytest.raises(FeatureDefinitionError, match="voicecart features build"):
        apply_features(settings)
    assert not (tmp_path / "empty" / "registry.db").exists()


def test_an_unreadable_online_store_raises_the_typed_error(store):
    settings, _ = store
    feast_store = open_store(settings, must_exist=True)
    profiles = ProfileStore(feast_store, settings)
    feast_store.config.online_store.path = str(settings.store_dir / "no" / "such" / "dir" / "online.db")
    with pytest.raises(FeatureStoreUnavailable, match="online profile read failed"):
        profiles.get("c1")


def test_a_definition_feast_itself_rejects_leaves_the_registry_as_it_was(store):
    import copy

    from voicecart.features import FeatureStoreError

    settings, _ = store
    registry = settings.store_dir / "registry.db"
    before = registry.read_bytes()
    objects = definitions(settings)
    twin = copy.deepcopy(next(o for o in objects if getattr(o, "name", "") == "product_features"))
    with pytest.raises(FeatureStoreError, match="registry left as it was.*product_features"):
        apply_features(settings, [*objects, twin])
    assert registry.read_bytes() == before
