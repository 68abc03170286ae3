"""The replay: arms, weeks, the served endpoint, and the pipeline's steps in the pipeline's order.

For each arm, each cycle (a week by default) of the replay:

1. **cut** — the prepared dataset cut at the cycle's first day (``data.window.prepare_window``): all the
   pipeline and the server know then. Nothing of that day or later is in it.
2. **retrain** (not the frozen arm) — the training pipeline's steps, in-process and in its order:
   snapshot (the cut, plus the feedback events of the arm's offline store) → train → export → evaluate
   vs the champion (the gate, on the last ``gate_days`` before the day) → register → canary (or keep).
   The no-feedback arm's snapshot reads an empty offline store: the same steps, without feedback.
3. **serve** — ``voicecart serve`` on the arm's registry (champion and canary side by side) with the
   profiles and product statistics of the cut (the feedback push updates the profiles inside the week),
   its feedback intake writing to the arm's offline store.
4. **ask** — every day of the cycle, every (customer, category) bought that day is asked over HTTP; the
   shopper's reaction goes to ``POST /v1/feedback``.
5. **decide** — at the cycle's end the canary's sequential decision (``rollout.local``) reads both arms'
   counts; the week is its maximum duration (undecided is rolled back). The promoted model serves the next
   cycle.

Every answer is kept (``answers.parquet``) with its arm, model version and hit, so the report pairs the
same requests across arms.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.simulate.shopper import Ask, day_asks, outcome, react

ARMS = ("frozen", "no_feedback", "feedback")
"""The frozen first model; weekly retraining without the feedback; weekly retraining with it."""
HISTORY_DAYS = 56
"""The training weeks before the gate window (``features.snapshot.TRAIN_DAYS``)."""
BATCH = 16
"""Requests per ``:predict`` call (the V1 protocol's maximum instances)."""


@dataclass(frozen=True)
class ReplayConfig:
    dataset: Path
    """A prepared dataset (``voicecart data prepare``) covering the history and the replayed days."""
    out: Path
    start: str = "2001-02-01"
    days: int = 28
    cycle_days: int = 7
    gate_days: int = 3
    """The gate evaluates the challenger on the last ``gate_days`` before the cycle's day (the past only);
    training reads the ``HISTORY_DAYS`` before that."""
    arms: tuple[str, ...] = ARMS
    max_customers: int = 0
    seed: int = 0
    epochs: int = 4
    hidden: str = "64,32"
    lr: float = 3e-3
    margin: float = 0.0
    canary_percent: int = 50
    canary_min_requests: int = 50
    """Requests (and feedback events) per arm before the canary can be promoted."""
    offline_gate: bool = True
    """Whether the offline gate decides which retrained model goes out (off: every retrained model goes to the
    canary, whatever the gate said, and the live sequential decision alone promotes or rolls it back)."""
    deadline_ms: float = 10_000.0
    """The server's per-request deadline. The replay measures answers, not latency (benchmarks/serving.py
    does): at the default 50 ms a loaded machine turns answers into popularity fallbacks at random."""
    gate_latency: bool = True
    """Whether the gate's latency guardrail applies (off: its budget and tolerance are lifted, because on a
    shared machine the paired p99 of two equal-sized rankers jitters by more than the guardrail's slack)."""

    @property
    def first_day(self) -> datetime:
        from voicecart.schemas.times import parse_moment

        return parse_moment(self.start).astimezone(timezone.utc)

    def cycle_starts(self) -> list[datetime]:
        return [self.first_day + timedelta(days=d) for d in range(0, self.days, self.cycle_days)]


@dataclass
class Cycle:
    """What one arm did in one cycle: the retrain (if any), what served, what came back."""

    arm: str
    day: str
    served_as_of: str | None = None
    """The latest order in the served cut (strictly before ``day``)."""
    champion: str | None = None
    canary: str | None = None
    retrain: dict | None = None
    canary_outcome: dict | None = None
    requests: int = 0
    answered: int = 0
    hits: int = 0
    feedback_sent: int = 0
    feedback_acknowledged: int = 0
    feedback_refused: int = 0
    offline_events: int = 0
    """Events in the arm's offline store after the cycle (one per event_id)."""
    extra: dict = field(default_factory=dict)


def _day(d: datetime) -> str:
    return f"{d:%Y-%m-%d}"


def run_replay(cfg: ReplayConfig, log: Callable[[str], None] = print,
               progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The whole replay (every arm); writes ``out/answers.parquet`` and ``out/replay.json``, returns the latter."""
    from voicecart.data.window import prepare_window
    from voicecart.registry import Registry

    out = Path(cfg.out)
    unknown = [a for a in cfg.arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arms: unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    _reuse_or_clear(cfg, out)
    starts = cfg.cycle_starts()
    world_start = starts[0] - timedelta(days=HISTORY_DAYS + cfg.gate_days)
    end = cfg.first_day + timedelta(days=cfg.days)
    world = out / "world"
    if not (world / "manifest.json").is_file():
        log(f"world: {cfg.dataset} from {_day(world_start)} to {_day(end)}"
            + (f", {cfg.max_customers} customers" if cfg.max_customers else ""))
        prepare_window("prepared", cfg.dataset, world, window_start=_day(world_start), window_end=_day(end),
                       max_customers=cfg.max_customers, seed=cfg.seed)
    cuts = {d: _cut(world, out / "cuts" / _day(d), world_start, d) for d in starts}
    empty_store = out / "no-feedback-store"
    empty_store.mkdir(exist_ok=True)
    seed_registry = out / "seed-registry"
    if Registry(str(seed_registry)).champion() is None:
        log(f"first champion: trained on the cut at {_day(starts[0])}")
        first = retrain(cfg, cuts[starts[0]], starts[0], seed_registry, empty_store, out / "seed-cycle",
                        world_start, log)
        if not first["promote"]:
            # the replay needs a model to start from: the first one serves even when a baseline beat it
            Registry(str(seed_registry)).promote(first["version"], f"the replay's starting model ({first['summary']})")
            first["state"] = "starting champion despite the gate"
        (out / "seed-cycle" / "first.json").write_text(json.dumps(first, indent=2, default=str))
    else:
        first = json.loads((out / "seed-cycle" / "first.json").read_text())
    asks = {}
    records: list[Cycle] = []
    answers: list[dict] = []
    for arm in cfg.arms:
        folder = out / "arms" / arm
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(seed_registry, folder / "registry")
        store = folder / "store"
        for i, day in enumerate(starts):
            cycle = Cycle(arm, _day(day))
            if i > 0 and arm != "frozen":
                cycle.retrain = retrain(cfg, cuts[day], day, folder / "registry", store if arm == "feedback"
                                        else empty_store, folder / "cycles" / _day(day), world_start, log)
            elif i == 0:
                cycle.retrain = first
            days = [day + timedelta(days=d) for d in range(cfg.cycle_days) if day + timedelta(days=d) < end]
            for d in days:
                asks.setdefault(d, day_asks(world, d))
            answers += serve_cycle(cfg, arm, cycle, cuts[day], folder, [(d, asks[d]) for d in days], log, progress)
            records.append(cycle)
            log(f"{arm} {cycle.day}: HR@1 {cycle.hits / max(cycle.requests, 1):.3f} on {cycle.requests} requests, "
                f"champion {cycle.champion}" + (f", canary {cycle.canary}: {cycle.canary_outcome['verdict']}"
                                                 if cycle.canary_outcome else ""))
    pq.write_table(pa.Table.from_pylist(answers), out / "answers.parquet")
    result = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
              "world": str(world), "cycles": [asdict(c) for c in records]}
    (out / "replay.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def _reuse_or_clear(cfg: ReplayConfig, out: Path) -> None:
    """Keep the world, cuts and first model of an earlier replay into ``out`` only if it had the same data
    settings (the arms always run again)."""
    same = {k: str(v) for k, v in asdict(cfg).items() if k in ("dataset", "start", "days", "cycle_days", "gate_days",
                                                               "max_customers", "seed", "epochs", "hidden", "lr")}
    marker = out / "world.json"
    if marker.is_file() and json.loads(marker.read_text()) != same:
        for name in ("world", "cuts", "seed-registry", "seed-cycle", "no-feedback-store"):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(same, indent=2))


def _cut(world: Path, folder: Path, world_start: datetime, day: datetime) -> Path:
    """The world cut at ``day``: every order before it (what is known at the start of that day)."""
    from voicecart.data.window import prepare_window

    if not (folder / "manifest.json").is_file():
        prepare_window("prepared", world, folder, window_start=_day(world_start), window_end=_day(day))
    return folder


def retrain(cfg: ReplayConfig, cut: Path, day: datetime, registry: Path, feedback_store: Path, folder: Path,
            world_start: datetime, log: Callable[[str], None]) -> dict:
    """The training pipeline's steps on the cut at ``day`` (C-STAR left out: the ranker's default runs
    without embeddings): snapshot → train → export → evaluate → register → canary or keep."""
    from voicecart.export.model import export_model
    from voicecart.features.snapshot import snapshot_step
    from voicecart.promotion import evaluate_update, record_outcome, register_challenger
    from voicecart.ranking.train import train_step
    from voicecart.registry import Registry

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    test_from, window_end = _day(day - timedelta(days=cfg.gate_days)), _day(day)
    snap = snapshot_step(cut, None, folder / "snapshot", test_from=test_from, window_end=window_end,
                         feedback_store=feedback_store)
    trained = train_step(folder / "snapshot", folder / "model", test_from=test_from, epochs=cfg.epochs,
                         hidden=cfg.hidden, lr=cfg.lr, seed=cfg.seed, ablations=False, log=lambda _: None)
    export_model(folder / "model", folder / "snapshot", folder / "bundle", test_from=test_from,
                 window_start=_day(world_start), window_end=window_end, mar=False)
    from voicecart.evaluation.gate import GateConfig

    lifted = {} if cfg.gate_latency else {"latency_tolerance": 1e6, "latency_slack_ms": 1e6, "latency_budget_ms": 1e6}
    gate = evaluate_update(folder / "snapshot", folder / "bundle", str(registry), test_from=test_from,
                           window_end=window_end, margin=cfg.margin, seed=cfg.seed, gate=GateConfig(**lifted),
                           report_path=folder / "report.md", decision_path=folder / "decision.json",
                           model_dir=folder / "model")
    version = register_challenger(folder / "bundle", folder / "decision.json", str(registry))
    models = Registry(str(registry))
    if gate["promote"] or not cfg.offline_gate:
        reason = gate["summary"] if gate["promote"] else f"offline gate off for the replay: {gate['summary']}"
        state = models.start_canary(version, cfg.canary_percent, reason).state
    else:
        state = "refused"
    record_outcome(str(registry), f"replay-{window_end}", state="SUCCEEDED")
    log(f"  retrain at {window_end}: {trained['purchase_lists']:,} purchase lists, {trained['feedback_lists']:,} "
        f"feedback lists (of {snap['feedback_events']:,} events); gate: {gate['summary']} → {version} {state}")
    return {"version": version, "promote": gate["promote"], "state": state, "summary": gate["summary"],
            "feedback_events": snap["feedback_events"], "feedback_lists": trained["feedback_lists"],
            "feedback_skipped": trained["feedback_skipped"], "purchase_lists": trained["purchase_lists"],
            "gate_hr1_challenger": gate["metrics"].get("challenger_hr@1"),
            "gate_hr1_champion": gate["metrics"].get("champion_hr@1")}


def serve_cycle(cfg: ReplayConfig, arm: str, cycle: Cycle, cut: Path, folder: Path,
                days: list[tuple[datetime, list[Ask]]], log: Callable[[str], None],
                progress: Callable[[str, int, int], None] | None) -> list[dict]:
    """Serve the arm's registry on the cut for the cycle's days; ask, react, decide the canary."""
    import httpx

    from voicecart.registry import Registry
    from voicecart.serving.feedback import FeedbackLog
    from voicecart.serving.local import LocalServer

    registry = Registry(str(folder / "registry"))
    cycle.champion = registry.champion()
    pointer = registry.canary()
    cycle.canary = pointer.version if pointer else None
    cycle.served_as_of = _latest_order(cut)
    env = {"VOICECART_FEATURES__STORE_DIR": str(folder / "store"),
           "VOICECART_SERVING__FEEDBACK_MAX_AGE_S": str(100 * 365 * 86_400.0)}
    # events of a replayed day are years old: the intake's freshness window is opened for the replay
    server = LocalServer(folder / "registry", "--profiles-from", str(cut), "--feedback-db",
                         str(folder / "feedback.sqlite"), "--deadline-ms", str(cfg.deadline_ms), log_path=folder / "serve.log", env=env).start()
    rows: list[dict] = []
    total = sum(len(a) for _, a in days)
    wal = FeedbackLog(folder / "feedback.sqlite")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            done = 0
            for day, asks in days:
                answered = []
                for i in range(0, len(asks), BATCH):
                    batch = asks[i:i + BATCH]
                    reply = http.post("/v1/models/voicecart:predict", json={"instances": [a.body() for a in batch]})
                    reply.raise_for_status()
                    answered += zip(batch, reply.json()["predictions"])
                    done += len(batch)
                    if progress:
                        progress(f"{arm} {cycle.day}", done, total)
                # the shopper reacts at the day's checkout; the day's events reach the profiles and the offline
                # store before the next day is asked (so a replay does not depend on the push thread's timing)
                rows += [_answer_row(arm, cycle, day, ask, answer, _send(http, cycle, react(ask, answer)))
                         for ask, answer in answered]
                settle(wal)
            if cycle.canary:
                cycle.canary_outcome = _decide(cfg, server.url, registry)
    finally:
        wal.close()
        server.stop()
    cycle.requests = len(rows)
    cycle.answered = sum(r["product_id"] is not None for r in rows)
    cycle.hits = sum(r["hit"] for r in rows)
    cycle.offline_events = offline_events(folder / "store")
    return rows


def settle(wal, timeout_s: float = 120.0) -> None:  # noqa: ANN001 - serving.feedback.FeedbackLog
    """Wait until the intake has pushed every logged event online and written it offline."""
    deadline = time.monotonic() + timeout_s
    while (counts := wal.counts())["unpushed"] or counts["offline_pending"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the feedback intake did not catch up in {timeout_s:.0f}s: {counts}")
        time.sleep(0.05)


def _send(http, cycle: Cycle, events: list[dict]) -> str:  # noqa: ANN001 - httpx.Client
    for event in events:
        reply = http.post("/v1/feedback", json=event)
        cycle.feedback_sent += 1
        if reply.status_code in (200, 202):
            cycle.feedback_acknowledged += 1
        else:
            cycle.feedback_refused += 1
            cycle.extra.setdefault("refusals", []).append(reply.text[:200])
    return outcome(events)


def _answer_row(arm: str, cycle: Cycle, day: datetime, ask: Ask, answer: dict, reaction: str) -> dict:
    product = (answer.get("product") or {}).get("id")
    return {"arm": arm, "cycle": cycle.day, "day": _day(day), "request_id": ask.request_id,
            "customer_id": ask.customer_id, "subclass": ask.subclass, "product_id": product,
            "hit": bool(product and product in ask.bought), "reaction": reaction,
            "served_by": answer.get("arm"), "model_version": answer.get("model_version"),
            "personalized": answer.get("personalized"), "fallbacks": ",".join(answer.get("fallbacks") or [])}


def _decide(cfg: ReplayConfig, url: str, registry) -> dict:  # noqa: ANN001 - registry.Registry
    """The canary's sequential decision at the cycle's end; the cycle is its longest run (undecided: rollback)."""
    from voicecart.rollout.decision import Policy
    from voicecart.rollout.local import conclude, look_local

    policy = Policy(min_requests=cfg.canary_min_requests, min_feedback=cfg.canary_min_requests, max_duration_s=0.0)
    look = look_local(url, policy)
    champion = conclude(registry, look)
    return {"verdict": look.decision.verdict.value, "reasons": look.decision.reasons, "champion_after": champion,
            "canary_requests": look.canary.requests, "stable_requests": look.stable.requests,
            "canary_kept": look.canary.kept, "canary_feedback": look.canary.feedback,
            "stable_kept": look.stable.kept, "stable_feedback": look.stable.feedback}


def _latest_order(dataset: Path) -> str | None:
    from voicecart.data import connect

    con = connect(dataset)
    try:
        latest = con.execute("SELECT max(timestamp) FROM orders").fetchall()[0][0]
    finally:
        con.close()
    return None if latest is None else latest.isoformat()


def offline_events(store_dir: Path) -> int:
    """Feedback events in a local offline store (one per event_id), as training reads them."""
    from voicecart.features.offline_duckdb import feedback_dir

    folder = feedback_dir(store_dir)
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return 0
    from voicecart.data.store import duckdb_connect

    con = duckdb_connect()
    try:
        return con.execute("SELECT count(DISTINCT event_id) FROM read_parquet(?)", [str(folder / "*.parquet")]).fetchall()[0][0]
    finally:
        con.close()
