"""Feature store on full Ta-Feng: build, materialize, and the one-read-per-request profile.

Measures, in one process, on a throw-away store:

* feature build (DuckDB SQL → parquet) for all of Ta-Feng, against building the plain
  customer × product table (one row per pair, the "one read per candidate" layout);
* materializing the 32k customer profiles into SQLite and into a real redis-server, against
  materializing the pair table;
* online read latency through the Feast SDK: ONE profile read per request (``ProfileStore.get``)
  against the per-candidate layout, both as one Feast call per candidate and as one batched
  call for all candidates (``--candidates``, default 100).

With ``--bundle`` (a model bundle or a registry), the served engine (``ResolutionEngine``) also answers
real requests from the materialized SQLite store — profiles and product statistics read from Feast — and
its resolve latency is reported.

Writes the `features` section of docs/benchmarks.md (Ta-Feng), or ``features_<source>`` for another
dataset (e.g. ``features_completejourney``), so the datasets' rows sit side by side. Never asserts timings.
Usage: ``python benchmarks/features.py [--data data/tafeng] [--requests 1000] [--candidates 100] [--bundle DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._report import peak_rss_mib, write_section  # noqa: E402

TAFENG_ZIP = ROOT.parent / "shared" / "data" / "tafeng" / "ta_feng.csv.zip"
WINDOW = (datetime(1999, 1, 1), datetime(2030, 1, 1))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def dataset(arg: Path | None, tmp: Path) -> Path:
    if arg is not None:
        return arg
    if (ROOT / "data" / "tafeng" / "manifest.json").exists():
        return ROOT / "data" / "tafeng"
    if not TAFENG_ZIP.exists():
        sys.exit(f"no prepared Ta-Feng at data/tafeng and no source at {TAFENG_ZIP}")
    from voicecart.data.prepare import prepare

    prepare("tafeng", tmp / "tafeng", path=TAFENG_ZIP)
    return tmp / "tafeng"


def pair_view(settings):
    """The baseline layout: one online row per (customer, product)."""
    from feast import FeatureView, Field
    from feast.types import Float64

    from voicecart.features.definitions import FileTables, customer, product

    return FeatureView(name="customer_product", entities=[customer, product], ttl=timedelta(days=365),
                       schema=[Field(name="purchase_count", dtype=Float64),
                               Field(name="last_purchase_ts", dtype=Float64)],
                       source=FileTables(Path(settings.store_dir) / "offline").source("customer_product"))


def start_redis(folder: Path) -> tuple[subprocess.Popen | None, int]:
    exe = shutil.which("redis-server")
    if exe is None:
        return None, 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc, port
        time.sleep(0.05)
    proc.kill()
    return None, 0


def latencies(fn, keys) -> np.ndarray:
    out = []
    for key in keys:
        t = time.perf_counter()
        fn(key)
        out.append(time.perf_counter() - t)
    return np.array(out) * 1e3


def read_benchmark(settings, customers, candidates: dict[str, list[str]], n_candidates: int) -> dict[str, np.ndarray]:
    from voicecart.features.online import ProfileStore
    from voicecart.features.store import open_store

    profiles = ProfileStore.from_settings(settings)
    store = open_store(settings, must_exist=True)
    pair_features = store.get_feature_view("customer_product")
    refs = [f"customer_product:{f.name}" for f in pair_features.features]
    for c in customers[:50]:  # warm caches and connections
        profiles.get(c)
        store.get_online_features(features=refs, entity_rows=[{"customer_id": c, "product_id": "x"}])

    def per_candidate(c):
        for p in candidates[c]:
            store.get_online_features(features=refs, entity_rows=[{"customer_id": c, "product_id": p}]).to_dict()

    def batched(c):
        store.get_online_features(features=refs, entity_rows=[{"customer_id": c, "product_id": p}
                                                              for p in candidates[c]]).to_dict()

    few = customers[: max(20, len(customers) // 10)]
    return {
        "profile (one read)": latencies(profiles.get, customers),
        f"pairs, batched ({n_candidates} keys, one call)": latencies(batched, customers),
        f"pairs, one call per candidate (x{n_candidates})": latencies(per_candidate, few),
    }


SOURCE_NAMES = {"tafeng": "Ta-Feng", "completejourney": "Complete Journey", "instacart": "Instacart"}


def source_of(data: Path) -> str:
    import json

    manifest = data / "manifest.json"
    return json.loads(manifest.read_text()).get("source", data.name) if manifest.exists() else data.name


def engine_requests(data: Path, customers: list[str], seed: int = 0) -> list[dict]:
    """One request per customer: "add <what a shopper calls a category they bought>" (the code on Ta-Feng)."""
    from voicecart.data import connect
    from voicecart.data.utterances import spoken_phrases

    con = connect(data)
    bought = {c: rows for c, rows in con.execute(
        "SELECT o.customer_id, list(DISTINCT [p.category_l3, coalesce(p.category_l3_name, ''), "
        "coalesce(p.category_l2_name, '')]) FROM orders o JOIN order_lines l USING (order_id) "
        "JOIN products p USING (product_id) GROUP BY 1").fetchall()}
    con.close()
    rng = np.random.default_rng(seed)
    out = []
    for c in customers:
        code, type_name, category = bought[c][int(rng.integers(len(bought[c])))]
        said = (spoken_phrases(type_name, category)["type"] or [code]) if type_name else [code]
        out.append({"customer_id": c, "utterance": f"add {said[0]}"})
    return out


def engine_benchmark(bundle: Path, settings, requests: list[dict]) -> dict:  # noqa: ANN001
    """The served engine answering from the materialized store: p50/p99 of ``resolve`` and shares."""
    from voicecart.config import ServingSettings
    from voicecart.features.online import ProfileStore
    from voicecart.schemas import ResolveRequest
    from voicecart.serving.bundle import load_serving_model, stats_from_feast
    from voicecart.serving.engine import ResolutionEngine

    model, t_load = timed(load_serving_model, bundle, stats=stats_from_feast(settings))
    engine = ResolutionEngine(model, ProfileStore.from_settings(settings), ServingSettings(deadline_ms=10_000))
    asked = [ResolveRequest(**r) for r in requests]
    for r in asked[:100]:
        engine.resolve(r)  # warm-up
    lat, personal, answered = [], 0, 0
    for r in asked:
        t = time.perf_counter()
        answer = engine.resolve(r)
        lat.append((time.perf_counter() - t) * 1e3)
        personal += answer.personalized
        answered += answer.product is not None
    engine.close()
    stats = model.catalog.stats
    return {"ms": np.asarray(lat), "personalized": personal / len(asked), "answered": answered / len(asked),
            "load_s": t_load, "products_with_stats": int((stats.popularity > 0).sum()), "version": model.version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="a bundle or registry: the served engine answers from the materialized store")
    args = parser.parse_args()

    from voicecart.config import FeatureSettings
    from voicecart.data import connect
    from voicecart.features import build_features
    from voicecart.features.store import apply, definitions, materialize, offline_dir

    with tempfile.TemporaryDirectory(prefix="voicecart-bench-features-") as tmp_name:
        tmp = Path(tmp_name)
        data = dataset(args.data, tmp)
        sqlite = FeatureSettings(store_dir=tmp / "sqlite")
        print(f"data: {data}")

        summary, t_build = timed(build_features, data, offline_dir(sqlite))
        pairs, t_pairs = timed(build_features, data, tmp / "pairs", tables=["customer_product"])
        shutil.copy(tmp / "pairs" / "customer_product.parquet", offline_dir(sqlite) / "customer_product.parquet")
        n_profiles, n_pairs = summary.rows["customer_profile"], pairs.rows["customer_product"]
        print(f"build {t_build:.1f} s ({summary.rows}); pair table {t_pairs:.1f} s ({n_pairs:,} rows)")

        objects = definitions(sqlite) + [pair_view(sqlite)]
        timed(apply, sqlite, objects)
        _, t_mat_profile = timed(materialize, sqlite, *WINDOW, views=["customer_profile"])
        _, t_mat_pairs = timed(materialize, sqlite, *WINDOW, views=["customer_product"])
        print(f"materialize sqlite: profiles {t_mat_profile:.1f} s, pairs {t_mat_pairs:.1f} s")

        con = connect(data)
        rng = np.random.default_rng(0)
        profile_rows = con.execute("SELECT DISTINCT customer_id FROM orders").fetchall()
        customers = [r[0] for r in rng.choice(np.array(profile_rows, dtype=object), size=args.requests)]
        popular = [r[0] for r in con.execute("SELECT product_id FROM order_lines GROUP BY 1 ORDER BY count(*) DESC "
                                             f"LIMIT {args.candidates}").fetchall()]
        own = dict(con.execute("SELECT o.customer_id, list(DISTINCT l.product_id) FROM orders o JOIN order_lines l "
                               "USING (order_id) GROUP BY 1").fetchall())
        candidates = {c: (list(own.get(c, []))[: args.candidates // 2] + popular)[: args.candidates] for c in customers}
        con.close()

        reads = {"SQLite": read_benchmark(sqlite, customers, candidates, args.candidates)}
        served = None
        if args.bundle is not None:
            _, t_mat_products = timed(materialize, sqlite, *WINDOW, views=["product_features"])
            served = engine_benchmark(args.bundle, sqlite, engine_requests(data, customers))
            served["materialize_products_s"] = t_mat_products
            print(f"engine: {served}")
        redis_proc, port = start_redis(tmp)
        t_mat_redis = t_mat_redis_pairs = None
        try:
            if redis_proc is not None:
                redis = FeatureSettings(store_dir=tmp / "redis", online={"type": "redis", "url": f"127.0.0.1:{port}"})
                shutil.copytree(offline_dir(sqlite), offline_dir(redis))
                timed(apply, redis, definitions(redis) + [pair_view(redis)])
                _, t_mat_redis = timed(materialize, redis, *WINDOW, views=["customer_profile"])
                _, t_mat_redis_pairs = timed(materialize, redis, *WINDOW, views=["customer_product"])
                print(f"materialize redis: profiles {t_mat_redis:.1f} s, pairs {t_mat_redis_pairs:.1f} s")
                reads["Redis"] = read_benchmark(redis, customers, candidates, args.candidates)
        finally:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(timeout=10)

    source = source_of(data)
    lines = [
        f"Full {SOURCE_NAMES.get(source, source)} ({data.name}): {n_profiles:,} customer profiles, {summary.rows['product_features']:,} "
        f"products, {n_pairs:,} customer × product pairs. Baseline = the plain one-row-per-(customer, product) "
        "layout that a request would read once per candidate.",
        "",
        "| step | ours | baseline (pair layout) | ratio ours / baseline |",
        "|---|---:|---:|---:|",
        f"| feature build, DuckDB → parquet (profiles + customer + product features) | {t_build:.1f} s | "
        f"{t_pairs:.1f} s (pair table alone) | {t_build / t_pairs:.2f} |",
        f"| materialize into SQLite | {t_mat_profile:.1f} s ({n_profiles:,} profiles) | {t_mat_pairs:.1f} s "
        f"({n_pairs:,} pairs) | {t_mat_profile / t_mat_pairs:.2f} |",
    ]
    if t_mat_redis is not None:
        lines.append(f"| materialize into Redis | {t_mat_redis:.1f} s ({n_profiles:,} profiles) | "
                     f"{t_mat_redis_pairs:.1f} s ({n_pairs:,} pairs) | {t_mat_redis / t_mat_redis_pairs:.2f} |")
    lines += ["", f"Online read per request through the Feast SDK, {args.candidates} candidates per request, "
              f"{args.requests:,} requests (the per-call baseline on a tenth of them):", "",
              "| store | layout | p50 ms | p90 ms | p99 ms | baseline / profile, p50 | baseline / profile, p99 |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for store_name, results in reads.items():
        base50, base99 = np.percentile(results["profile (one read)"], [50, 99])
        for layout, ms in results.items():
            p50, p90, p99 = np.percentile(ms, [50, 90, 99])
            lines.append(f"| {store_name} | {layout} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {p50 / base50:.1f}× | "
                         f"{p99 / base99:.1f}× |")
    if served is not None:
        p50, p90, p99 = np.percentile(served["ms"], [50, 90, 99])
        lines += ["", f"The served engine (`ResolutionEngine.resolve`, bundle {served['version']}, ONNX Runtime) "
                  f"answering {len(served['ms']):,} requests (\"add <a category the customer bought>\", in shopper "
                  f"words where the catalogue has them) from the SQLite store: profiles and the product statistics "
                  f"of {served['products_with_stats']:,} products read from Feast (product view materialized in "
                  f"{served['materialize_products_s']:.1f} s, model loaded in {served['load_s']:.1f} s).", "",
                  "| path | p50 ms | p90 ms | p99 ms | answered | personalized |", "|---|---:|---:|---:|---:|---:|",
                  f"| resolve, profile from Feast SQLite | {p50:.2f} | {p90:.2f} | {p99:.2f} | "
                  f"{served['answered']:.0%} | {served['personalized']:.0%} |"]
    if "Redis" not in reads:
        lines += ["", "_redis-server not installed (scripts/tools/redis.sh): Redis rows skipped._"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"Load average at the end (1/5/15 min): {load} on this shared machine; tail latencies (p99) "
              "move with it, medians much less.", "", f"Peak RSS {peak_rss_mib():.0f} MiB. Profile reads = `ProfileStore.get` (customer_profile + "
              "customer_embedding through the `serving_profile` feature service, one `get_online_features` call)."]
    markdown = "\n".join(lines)
    print(markdown)
    write_section("features" if source == "tafeng" else f"features_{source}", markdown)


if __name__ == "__main__":
    main()
