"""Store configurations checked by Feast's own validation; profile rows and feedback updates."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voicecart.cli import app
from voicecart.config import FeatureSettings
from voicecart.features import FeatureStoreError
from voicecart.features.online import profile_from_row, profile_to_row, with_purchase
from voicecart.features.online_redis import address as redis_address
from voicecart.features.store import check_window, repo_config
from voicecart.schemas import CustomerProfile

REPO = Path(__file__).resolve().parents[2]


def test_local_config_is_file_offline_sqlite_online_and_valid_for_feast(tmp_path):
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

    config = repo_config(FeatureSettings(store_dir=tmp_path))
    assert isinstance(config.offline_store, DaskOfflineStoreConfig)
    assert isinstance(config.online_store, SqliteOnlineStoreConfig)
    assert config.online_store.path == str(tmp_path.resolve() / "online_store.db")
    assert config.registry.path == str(tmp_path.resolve() / "registry.db")


def test_production_config_takes_project_dataset_and_redis_from_settings():
    from feast.infra.offline_stores.bigquery import BigQueryOfflineStoreConfig
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig

    settings = FeatureSettings(offline={"type": "bigquery", "project": "shop-prod", "dataset": "features"},
                               online={"type": "redis", "url": "redis.feast.svc:6379"},
                               registry="gs://shop-feast/registry.db")
    config = repo_config(settings)
    assert isinstance(config.offline_store, BigQueryOfflineStoreConfig)
    assert (config.offline_store.project_id, config.offline_store.dataset) == ("shop-prod", "features")
    assert isinstance(config.online_store, RedisOnlineStoreConfig)
    assert config.online_store.connection_string == "redis.feast.svc:6379,socket_connect_timeout=0.25"
    url = FeatureSettings(online={"type": "redis", "url": "redis://10.0.0.5:7000/2"})
    assert repo_config(url).online_store.connection_string.startswith("10.0.0.5:7000,db=2,")
    assert config.registry.path == "gs://shop-feast/registry.db"
    assert config.provider == "gcp"


def test_bigquery_without_project_names_the_missing_settings(monkeypatch):
    from voicecart.config import ConfigError, load_settings

    monkeypatch.setenv("VOICECART_FEATURES__OFFLINE__TYPE", "bigquery")
    monkeypatch.setenv("VOICECART_FEATURES__OFFLINE__DATASET", "features")
    with pytest.raises(ConfigError, match=r"features\.offline\.bigquery\.project: Field required"):
        load_settings()


def test_a_bare_backend_name_means_its_defaults(monkeypatch):
    from voicecart.config import RedisOnline, load_settings

    monkeypatch.setenv("VOICECART_FEATURES__ONLINE", "redis")
    assert load_settings().features.online == RedisOnline()
    monkeypatch.delenv("VOICECART_FEATURES__ONLINE")
    monkeypatch.setenv("VOICECART_FEATURES__ONLINE__TYPE", "redis")
    monkeypatch.setenv("VOICECART_FEATURES__ONLINE__URL", "10.0.0.9:6380")
    assert load_settings().features.online.url == "10.0.0.9:6380"
    with pytest.raises(ValueError, match="sqlite', 'redis'"):
        FeatureSettings(online="memcached")


def test_feast_rejects_a_bad_online_store_field_and_we_name_it(monkeypatch, tmp_path):
    from voicecart.features import store

    real = store.repo_config_dict

    def broken(settings):
        raw = real(settings)
        raw["online_store"]["no_such_option"] = 1
        return raw

    monkeypatch.setattr(store, "repo_config_dict", broken)
    with pytest.raises(FeatureStoreError, match="no_such_option"):
        repo_config(FeatureSettings(store_dir=tmp_path))


def test_feature_repo_yaml_files_pass_feast_validation(monkeypatch):
    from feast.repo_config import load_repo_config

    local = load_repo_config(REPO / "feature_repo", REPO / "feature_repo" / "feature_store.yaml")
    assert (local.offline_store.type, local.online_store.type) == ("file", "sqlite")
    for name, value in {"REGISTRY": "gs://b/registry.db", "OFFLINE__PROJECT": "p", "OFFLINE__DATASET": "d",
                        "ONLINE__URL": "10.0.0.5:6379"}.items():
        monkeypatch.setenv(f"VOICECART_FEATURES__{name}", value)
    prod = load_repo_config(REPO / "feature_repo", REPO / "feature_repo" / "feature_store.production.yaml")
    assert (prod.offline_store.type, prod.online_store.type) == ("bigquery", "redis")
    assert (prod.offline_store.project_id, prod.online_store.connection_string) == ("p", "10.0.0.5:6379")


@pytest.mark.parametrize(("url", "address"), [("localhost:6379", ("localhost", 6379)),
                                              ("redis://10.1.2.3:7000/0", ("10.1.2.3", 7000)),
                                              ("cache:6380,db=0,ssl=true", ("cache", 6380))])
def test_redis_address_accepts_feast_and_url_forms(url, address):
    assert redis_address(url) == address


def test_materialize_window_must_end_after_it_starts():
    with pytest.raises(FeatureStoreError, match="end 2001-01-01.*not after start 2001-02-01"):
        check_window(datetime(2001, 2, 1), datetime(2001, 1, 1))
    assert check_window(datetime(2001, 1, 1), datetime(2001, 2, 1))[0].tzinfo == timezone.utc


def test_online_row_round_trips_through_a_profile():
    profile = CustomerProfile(customer_id="c1", order_count=3, mean_basket_size=1.5, last_order_ts=10.0,
                              product_ids=["a", "b"], product_counts=[2.0, 1.0], product_last_ts=[10.0, 5.0],
                              as_of=datetime(2001, 1, 2, tzinfo=timezone.utc))
    row = profile_to_row(profile)
    assert row["event_timestamp"] == datetime(2001, 1, 2, tzinfo=timezone.utc)
    back = profile_from_row("c1", row)
    assert back.model_dump(exclude={"as_of"}) == profile.model_dump(exclude={"as_of"})
    assert profile_from_row("c9", {"order_count": None, "product_ids": None, "embedding": None}) is None


def test_a_purchase_moves_the_product_up_and_refreshes_its_time():
    profile = CustomerProfile(customer_id="c1", order_count=2, product_ids=["a", "b"],
                              product_counts=[2.0, 1.0], product_last_ts=[100.0, 50.0])
    at = datetime(2001, 1, 1, tzinfo=timezone.utc)
    once = with_purchase(profile, "b", at)
    assert once.product_ids == ["b", "a"] and once.product_counts == [2.0, 2.0]
    assert once.product_last_ts[0] == at.timestamp() and once.as_of == at
    new = with_purchase(once, "z", at)
    assert new.product_ids[-1] == "z" and new.product_counts[-1] == 1.0
    assert profile.product_ids == ["a", "b"], "the original profile is not modified"
    with pytest.raises(FeatureStoreError):
        with_purchase(profile, "", at)


def test_cli_reports_bad_dates_and_windows_without_a_traceback(tmp_path):
    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["features", *args])
        return result.exit_code, " ".join(result.output.split())  # rich wraps long lines

    code, out = run("materialize", "--store-dir", str(tmp_path), "--start", "2001-02-01", "--end", "2001-01-01")
    assert code == 2 and "is not after start" in out and "Traceback" not in out
    code, out = run("build", "--data", str(tmp_path), "--as-of", "yesterday")
    assert code == 2 and "--as-of 'yesterday'" in out
    code, out = run("show", "--customer", "c1", "--store-dir", str(tmp_path / "none"))
    assert code == 2 and "run `voicecart features apply`" in out
    assert not (tmp_path / "none").exists(), "reading must not create an empty store"


def test_feature_repo_exposes_the_same_objects_to_the_feast_cli(monkeypatch, tmp_path):
    import runpy

    from feast import FeatureService, FeatureView, PushSource

    monkeypatch.setenv("VOICECART_FEATURES__STORE_DIR", str(tmp_path))
    names = runpy.run_path(str(REPO / "feature_repo" / "repo.py"))
    views = {v.name for v in names.values() if isinstance(v, FeatureView)}
    assert views == {"customer_profile", "customer_embedding", "customer_features", "product_features"}
    assert {s.name for s in names.values() if isinstance(s, FeatureService)} >= {"serving_profile", "ranker_training"}
    assert names["customer_profile"].stream_source.name == "customer_profile_push"
    assert isinstance(names["customer_profile_push"], PushSource)
    assert names["product_features"].batch_source.path == str(tmp_path.resolve() / "offline" / "product_features.parquet")
    embedding = names["customer_embedding"].features[0]
    assert (embedding.name, str(embedding.dtype)) == ("embedding", "Array(Float32)")


def test_the_predictor_is_a_typed_backend(monkeypatch):
    from voicecart.config import OnnxPredictor, TritonPredictor, load_settings

    assert load_settings().serving.predictor == OnnxPredictor()
    monkeypatch.setenv("VOICECART_SERVING__PREDICTOR__TYPE", "triton")
    monkeypatch.setenv("VOICECART_SERVING__PREDICTOR__URL", "vc-predictor.shop:80")
    predictor = load_settings().serving.predictor
    assert isinstance(predictor, TritonPredictor) and predictor.url == "vc-predictor.shop:80"
    monkeypatch.delenv("VOICECART_SERVING__PREDICTOR__URL")
    with pytest.raises(Exception, match="serving.predictor.triton.url"):
        load_settings()


def test_model_stores_are_chosen_by_their_location(tmp_path):
    from voicecart.registry import Registry
    from voicecart.registry.stores import LocalModelStore, ObjectModelStore, config_of

    assert config_of(tmp_path) == LocalModelStore(path=tmp_path)
    assert config_of(f"file://{tmp_path}") == LocalModelStore(path=tmp_path)
    assert config_of("gs://bucket/models") == ObjectModelStore(uri="gs://bucket/models")
    local, memory = Registry(tmp_path / "reg"), Registry("memory://vc-test/reg")
    assert local.version_uri("v0001") == str((tmp_path / "reg").resolve() / "voicecart" / "versions" / "v0001")
    assert memory.version_uri("v0001") == "memory://vc-test/reg/voicecart/versions/v0001"
