"""`voicecart simulate`: the closed-loop replay (:mod:`voicecart.simulate`) and its report."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from voicecart.cli.steps import terminal_console

console = terminal_console()


def simulate_cmd(
    data: Path = typer.Option(Path("data/tafeng"), help="A prepared dataset (ignored with --synthetic)."),
    out: Path = typer.Option(Path("runs/loop"), help="Where the replay's cuts, arms, answers and report go."),
    start: str = typer.Option("2001-02-01", help="First replayed day (with --synthetic: days after the data's start)."),
    days: int = typer.Option(28, min=1),
    cycle_days: int = typer.Option(7, min=1, help="Retrain (and decide the canary) every N days."),
    gate_days: int = typer.Option(3, min=1, help="The gate evaluates on the last N days before the retrain."),
    arms: str = typer.Option(",".join(("frozen", "no_feedback", "feedback")), help="Comma-separated arms."),
    max_customers: int = typer.Option(0, help="Sample this many customers (0: all)."),
    epochs: int = typer.Option(4),
    canary_percent: int = typer.Option(50, min=1, max=99),
    canary_min_requests: int = typer.Option(50, min=1),
    seed: int = typer.Option(0),
    margin: float = typer.Option(0.0, min=0.0, help="The gate's promotion margin."),
    gate_latency: bool = typer.Option(True, help="Apply the gate's latency guardrail (--no-gate-latency lifts it: "
                                                 "on a shared machine the paired p99 is noise)."),
    offline_gate: bool = typer.Option(True, help="Let the offline gate decide what goes out (--no-offline-gate: every "
                                                 "retrained model goes to the canary, the live decision alone decides)."),
    deadline_ms: float = typer.Option(10_000.0, help="The server's per-request deadline (the replay measures answers)."),
    synthetic: bool = typer.Option(False, help="Replay synthetic data with a planted brand switch instead."),
    customers: int = typer.Option(400, help="--synthetic: customers generated."),
    switch_after: int = typer.Option(7, help="--synthetic: the switch happens this many days into the replay."),
) -> None:
    """Replay days as voice requests to the real served engine; weekly retrain → gate → canary on the feedback."""
    from voicecart.data.errors import DataError
    from voicecart.simulate import ReplayConfig
    from voicecart.simulate.planted import planted_world
    from voicecart.simulate.report import summarize

    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    planted = None
    if synthetic:
        planted = planted_world(out / "synthetic-data", customers=customers, replay_days=days,
                                switch_after=switch_after, seed=seed, gate_days=gate_days)
        data, start = planted.dataset, planted.start
    elif not (data / "manifest.json").is_file():
        console.print(f"[red]error:[/red] data: {data} is not a prepared dataset (run `voicecart data prepare`)")
        raise typer.Exit(2)
    cfg = ReplayConfig(dataset=data.resolve(), out=out.resolve(), start=start, days=days, cycle_days=cycle_days,
                       gate_days=gate_days, arms=chosen, max_customers=max_customers, seed=seed, epochs=epochs,
                       canary_percent=canary_percent, canary_min_requests=canary_min_requests, margin=margin,
                       gate_latency=gate_latency, offline_gate=offline_gate, deadline_ms=deadline_ms)
    try:
        result = replay_with_progress(cfg, console)
    except (DataError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    summary = summarize(out.resolve(), result, planted)
    (out / "summary.json").write_text(json.dumps(summary["numbers"], indent=2, default=str))
    (out / "report.md").write_text(summary["markdown"])
    console.print(summary["markdown"], highlight=False)
    console.print(f"report: {out / 'report.md'}; plot: {summary['numbers']['plot']}", highlight=False)


def replay_with_progress(cfg, console) -> dict:  # noqa: ANN001 - simulate.ReplayConfig, rich Console
    """``run_replay`` with a progress bar per arm and cycle and its log lines on ``console``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from voicecart.simulate import run_replay

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        return run_replay(cfg, log=lambda line: console.print(line, highlight=False), progress=progress)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
