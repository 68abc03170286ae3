"""`voicecart ranker train` and `voicecart evaluate resolution`: the resolution model's commands."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import typer


def _moment(value: str, option: str) -> datetime:
    from voicecart.schemas.times import parse_moment

    try:
        return parse_moment(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _engine(data: Path):  # noqa: ANN202
    from voicecart.data import DataError
    from voicecart.features.offline_duckdb import DuckDBEngine

    if not (data / "manifest.json").exists():
        raise typer.BadParameter(f"{data} is not a prepared dataset (no manifest.json); run `voicecart data prepare`",
                                 param_hint="--data")
    try:
        return DuckDBEngine(data)
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None


def _data_end(engine) -> datetime:  # noqa: ANN001
    from voicecart.schemas.times import midnight

    last = engine.query("SELECT MAX(timestamp) AS t FROM orders").column("t")[0].as_py()
    return midnight(last) + timedelta(days=1)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    ranker = typer.Typer(help="Train and export the personalized ranker.", no_args_is_help=True)
    app.add_typer(ranker, name="ranker")

    @ranker.command("train")
    def train(
        data: Path = typer.Option(..., "--data", help="prepared canonical dataset folder"),
        as_of: str = typer.Option(..., "--as-of", help="train on the weeks before this date (YYYY-MM-DD)"),
        out: Path = typer.Option(..., "--out", help="folder for ranker.pt/json, ranker.onnx, catalog.pkl"),
        days: int = typer.Option(56, min=7, help="training days before --as-of"),
        epochs: int = typer.Option(4, min=1),
        seed: int = typer.Option(0),
        device: str = typer.Option("auto", help="auto (CUDA when present) | cpu | cuda"),
    ) -> None:
        """Train on the snapshot of the weeks before --as-of; write the model, its ONNX export and the catalogue."""
        import torch
        from rich.console import Console

        from voicecart.features.snapshot import build_snapshot, training_cuts, as_of_day, window_lines
        from voicecart.ranking import RankerConfig, train_ranker
        from voicecart.schemas.times import epoch_s

        console = Console()
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        cut = _moment(as_of, "--as-of")
        engine = _engine(data)
        start = cut - timedelta(days=days)
        with console.status("building the feature snapshot"):
            snap = build_snapshot(engine, as_of_day(window_lines(engine, start, cut)), cuts=training_cuts(cut, days),
                                  extra_moments=[cut])
        console.print(f"snapshot: {snap.lines.num_rows:,} lines, {snap.customers.num_rows:,} customer rows")
        trained = train_ranker(snap, start=epoch_s(start), end=epoch_s(cut),
                               config=RankerConfig(epochs=epochs, seed=seed, device=device), log=console.print)
        trained.save(out)
        trained.ranker.export_onnx(out / "ranker.onnx")
        console.print(f"wrote {out}/ranker.pt, ranker.json, ranker.onnx, catalog.pkl")

    @evaluate.command("resolution")
    def resolution(
        data: Path = typer.Option(..., "--data", help="prepared canonical dataset folder"),
        test_from: str | None = typer.Option(None, "--test-from", help="first test day (YYYY-MM-DD); time split"),
        split: str = typer.Option("time", "--split", help="time (needs --test-from; history frozen there) | online "
                                  "(needs --test-from; frozen model, features as of each query's day, as served) | "
                                  "last-order (leave each customer's last order out: Instacart)"),
        test_end: str | None = typer.Option(None, "--test-end", help="end of the test period (default: data end)"),
        json_out: Path | None = typer.Option(None, "--json", help="write the metrics here"),
        model: Path | None = typer.Option(None, "--model", help="a trained ranker folder (default: train one)"),
        epochs: int = typer.Option(4, min=1),
        boot: int = typer.Option(300, min=10, help="bootstrap resamples for the CIs"),
        tifu: bool = typer.Option(True, help="include the TIFU-KNN baseline (about a minute on Ta-Feng)"),
        plot: Path | None = typer.Option(None, "--plot", help="write a bar chart (PNG) of HR@1 with CIs"),
    ) -> None:
        """Every baseline and the ranker on the category-query split, with 95% bootstrap CIs."""
        import torch
        from rich.console import Console
        from rich.table import Table

        from voicecart.evaluation.resolution import PROTOCOLS, evaluate_protocol, evaluate_resolution, protocol_snapshot
        from voicecart.ranking import RankerConfig, TrainedRanker

        console = Console()
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        if split not in PROTOCOLS:
            raise typer.BadParameter(f"{split!r} is not one of {', '.join(PROTOCOLS)}", param_hint="--split")
        if split in ("time", "online") and not test_from:
            raise typer.BadParameter(f"the {split} split needs --test-from YYYY-MM-DD", param_hint="--test-from")
        engine = _engine(data)
        start = _moment(test_from, "--test-from") if test_from else None
        end = _moment(test_end, "--test-end") if test_end else _data_end(engine)
        config = RankerConfig(epochs=epochs)
        if model is not None:
            if split == "last-order":
                raise typer.BadParameter("--model is for the time and online splits", param_hint="--model")
            try:
                trained = TrainedRanker.load(model)
            except (FileNotFoundError, OSError, ValueError) as exc:
                raise typer.BadParameter(f"cannot load a ranker from {model}: {exc}", param_hint="--model") from None
            report = evaluate_resolution(protocol_snapshot(engine, split, start, end), start, end, model=trained,
                                         tifu=tifu, n_boot=boot, protocol=split, log=console.print)
        else:
            report = evaluate_protocol(engine, split, start, end, config=config, tifu=tifu, n_boot=boot,
                                       log=console.print)
        where = {"time": f"test from {test_from}", "online": f"test from {test_from}, features as of each day"}.get(
            split, "last order of each customer")
        table = Table(title=f"resolution on {data.name}, {where} ({report.info['queries']:,} queries)")
        for col in ("method", "HR@1 [95% CI]", "HR@5", "MRR", "NDCG@5", "HR@1 with cat. history", "HR@1 without"):
            table.add_column(col)
        for name, m in report.methods.items():
            a = m["all"]
            table.add_row(name, f"{a['hr@1']['value']:.4f} [{a['hr@1']['low']:.4f}, {a['hr@1']['high']:.4f}]",
                          f"{a['hr@5']['value']:.4f}", f"{a['mrr']['value']:.4f}", f"{a['ndcg@5']['value']:.4f}",
                          f"{m['with_category_history']['hr@1']['value']:.4f}",
                          f"{m['without_category_history']['hr@1']['value']:.4f}")
        console.print(table)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report.as_dict() | {"data": str(data), "split": split,
                                                                   "test_from": test_from}, indent=2))
            console.print(f"wrote {json_out}")
        if plot is not None:
            from voicecart.evaluation.report import bar_chart

            bar_chart(report.as_dict(), plot, f"{data.name}: HR@1 by method ({report.info['queries']:,} queries)")
            console.print(f"wrote {plot}")
