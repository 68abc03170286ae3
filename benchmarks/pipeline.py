"""Wall time and peak memory of the full local training pipeline (kfp.local) on real Ta-Feng or Complete Journey.

Baseline in the same process: the same library steps called directly, one after the other
(no KFP, no subprocesses), on the same data — the ratio is what the orchestration costs.

    python benchmarks/pipeline.py                      # all of Ta-Feng (needs data/tafeng)
    python benchmarks/pipeline.py --max-customers 3000 # a slice
    python benchmarks/pipeline.py --data data/completejourney --skip-direct  # the demo's default main job

The window and ranker epochs are the source's (scripts/demo.sh's defaults); the section is ``pipeline``
for Ta-Feng and ``pipeline_<source>`` for another source.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mib, write_section  # noqa: E402

WINDOWS = {  # the source's main-job window and ranker epochs, as scripts/demo.sh sets them
    "tafeng": (dict(window_start="2000-11-01", test_from="2001-02-01", window_end="2001-03-01"), 6),
    "completejourney": (dict(window_start="2017-01-01", test_from="2017-12-01", window_end="2017-12-15"), 4),
}
SOURCE_NAMES = {"tafeng": "Ta-Feng", "completejourney": "Complete Journey"}
WINDOW = WINDOWS["tafeng"][0]


class TreePeak:
    """Peak of the summed RSS of this process and all its children, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total / 2**20)
            time.sleep(0.2)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_pipeline(data: Path, work: Path, args: argparse.Namespace) -> tuple[float, float, dict]:
    from voicecart.cli.pipeline import _import_pipeline, run_local

    arguments = dict(registry_uri=str(work / "registry"), source="prepared", source_path=str(data),
                     max_customers=args.max_customers, seed=0, epochs=args.epochs, hidden="64,32", lr=0.003,
                     cstar_epochs=args.cstar_epochs, promotion_margin=0.0, run_name="bench", **WINDOW)
    with TreePeak() as peak:
        t0 = time.perf_counter()
        summary = run_local(_import_pipeline(), arguments, work / "runs")
        seconds = time.perf_counter() - t0
    return seconds, peak.peak, summary


def run_direct(data: Path, work: Path, args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """The library functions the components call, in the DAG's order, in this process."""
    from voicecart.data.window import prepare_window
    from voicecart.export.model import export_model
    from voicecart.features.snapshot import snapshot_step, training_cuts
    from voicecart.promotion import evaluate_update, register_challenger
    from voicecart.ranking.train import train_step
    from voicecart.schemas.times import parse_moment
    from voicecart.trajectory.window import pretrain_window

    steps: dict[str, float] = {}

    def timed(name: str, fn, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        t = time.perf_counter()
        out = fn(*a, **kw)
        steps[name] = time.perf_counter() - t
        return out

    w = WINDOW
    moments = [*training_cuts(parse_moment(w["test_from"])), parse_moment(w["window_end"])]
    t0 = time.perf_counter()
    timed("prepare", prepare_window, "prepared", data, work / "data", max_customers=args.max_customers, **w)
    timed("cstar", pretrain_window, work / "data", work / "enc", work / "emb", work / "curves.html",
          as_of=w["test_from"], embed_at=moments, epochs=args.cstar_epochs)
    timed("snapshot", snapshot_step, work / "data", work / "emb", work / "snapshot", test_from=w["test_from"],
          window_end=w["window_end"])
    timed("train", train_step, work / "snapshot", work / "model", test_from=w["test_from"], epochs=args.epochs,
          log=lambda _: None)
    timed("export", export_model, work / "model", work / "snapshot", work / "bundle", test_from=w["test_from"],
          window_start=w["window_start"], window_end=w["window_end"])
    timed("evaluate", evaluate_update, work / "snapshot", work / "bundle", str(work / "registry"),
          test_from=w["test_from"], window_end=w["window_end"], decision_path=work / "decision.json")
    timed("register", register_challenger, work / "bundle", work / "decision.json", str(work / "registry"))
    return time.perf_counter() - t0, steps


def step_times(log: str) -> dict[str, float]:
    """Per-step wall time from kfp.local's "Executing task" / "finished" log lines (HH:MM:SS.mmm)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    stamp = lambda s: sum(float(x) * m for x, m in zip(s.split(":"), (3600, 60, 1)))  # noqa: E731
    starts = {m.group(2): stamp(m.group(1)) for m in re.finditer(r"(\d\d:\d\d:\d\d\.\d+) - INFO - Executing task '([^']+)'", plain)}
    ends = {m.group(2): stamp(m.group(1)) for m in re.finditer(r"(\d\d:\d\d:\d\d\.\d+) - INFO - Task '([^']+)' finished", plain)}
    return {k: ends[k] - v for k, v in starts.items() if k in ends}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/tafeng"), help="prepared Ta-Feng folder")
    parser.add_argument("--max-customers", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="ranker epochs (default: the source's)")
    parser.add_argument("--cstar-epochs", type=int, default=1)
    parser.add_argument("--skip-direct", action="store_true", help="skip the in-process baseline")
    args = parser.parse_args()
    if not (args.data / "manifest.json").exists():
        sys.exit(f"{args.data} is not a prepared dataset: run `voicecart data prepare --source tafeng --out {args.data}`")
    global WINDOW
    import json

    source = json.loads((args.data / "manifest.json").read_text()).get("source", "tafeng")
    WINDOW, default_epochs = WINDOWS.get(source, WINDOWS["tafeng"])
    args.epochs = default_epochs if args.epochs is None else args.epochs
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="voicecart-bench-pipeline-"))
    try:
        import io
        from contextlib import redirect_stdout

        # the pipeline first, while this process is small: its tree peak is the steps' own memory
        buf = io.StringIO()
        with redirect_stdout(buf):
            seconds, peak, summary = run_pipeline(args.data, work / "kfp", args)
        steps = {name: step["seconds"] for name, step in summary.get("steps", {}).items()
                 if step["state"] == "succeeded"} or step_times(buf.getvalue())  # kfp.local logs go to files
        direct_s, direct_steps = (None, {}) if args.skip_direct else run_direct(args.data, work / "direct", args)
        direct_peak = peak_rss_mib()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    decision = (summary.get("decision") or {}).get("summary", "–")
    name = SOURCE_NAMES.get(source, source)
    scope = f"all of {name}" if args.max_customers == 0 else f"{args.max_customers:,} {name} customers"
    rows = ["| step | kfp.local (s) | direct call (s) |", "|---|---|---|"]
    names = {"prepare-data": "prepare", "build-snapshot": "snapshot", "pretrain-cstar": "cstar",
             "train-ranker": "train", "export-bundle": "export", "evaluate-challenger": "evaluate",
             "register-model": "register"}
    for task, secs in steps.items():
        d = direct_steps.get(names.get(task, ""), None)
        rows.append(f"| {task} | {secs:.1f} | {'–' if d is None else f'{d:.1f}'} |")
    ratio = f"{seconds / direct_s:.2f}×" if direct_s else "–"
    md = (f"Full training pipeline through `kfp.local.SubprocessRunner` on {scope} (window {WINDOW['window_start']}.."
          f"{WINDOW['window_end']}, evaluation from {WINDOW['test_from']}; ranker {args.epochs} epochs, C-STAR {args.cstar_epochs} "
          f"epoch(s)); state **{summary['state']}**.\n\n"
          f"| measure | value |\n|---|---|\n"
          f"| wall time, whole pipeline | {seconds:.0f} s ({seconds / 60:.1f} min; aim < 15 min) |\n"
          f"| peak memory, pipeline process tree (summed RSS, runner + running step) | {peak:,.0f} MiB |\n"
          f"| same steps called directly in one process | {direct_s or 0:.0f} s, peak RSS {direct_peak:,.0f} MiB |\n"
          f"| orchestration cost (kfp.local / direct) | {ratio} |\n\n"
          + "\n".join(rows) + f"\n\nGate: {decision}\n\nThe machine is shared (2 cores, other jobs running): "
          "per-step times of the two columns were taken minutes apart and carry that noise; the "
          "orchestration cost is one subprocess start, artifact copy-in/out and re-reading the dataset per step.\n")
    print(md)
    write_section("pipeline" if source == "tafeng" else f"pipeline_{source}", md)


if __name__ == "__main__":
    main()
