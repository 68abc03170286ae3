"""`voicecart ranker train` and `voicecart evaluate resolution`: the resolution model's commands."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import typer


def _day(value: str, option: str) -> float:
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp() / 86_400.0


def _purchases(data: Path):  # noqa: ANN202
    from voicecart.data import DataError
    from voicecart.ranking import Purchases

    if not (data / "manifest.json").exists():
        raise typer.BadParameter(f"{data} is not a prepared dataset (no manifest.json); run `voicecart data prepare`",
                                 param_hint="--data")
    try:
        return Purchases.from_dataset(data)
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    ranker = typer.Typer(help="Train and export the personalized ranker.", no_args_is_help=True)
    app.add_typer(ranker, name="ranker")

    @ranker.command("train")
    def train(
        data: Path = typer.Option(..., "--data", help="prepared canonical dataset folder"),
        as_of: str = typer.Option(..., "--as-of", help="train on the months before this date (YYYY-MM-DD)"),
        out: Path = typer.Option(..., "--out", help="folder for ranker.pt/json, ranker.onnx, catalog.pkl"),
        months: int = typer.Option(2, help="training months before --as-of"),
        epochs: int = typer.Option(4, min=1),
        seed: int = typer.Option(0),
    ) -> None:
        """Train on purchases before --as-of; write the model, its ONNX export and the catalogue as of --as-of."""
        import torch
        from rich.console import Console

        from voicecart.evaluation.resolution import Snapshot, train_on_months
        from voicecart.ranking import RankerConfig

        console = Console()
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        cut = _day(as_of, "--as-of")
        purchases = _purchases(data)
        console.print(f"read {len(purchases):,} purchases from {data}")
        model = train_on_months(purchases, cut, months=months, config=RankerConfig(epochs=epochs, seed=seed),
                                log=console.print)
        model.save(out)
        model.export_onnx(out / "ranker.onnx")
        Snapshot.build(purchases, cut).catalog.save(out / "catalog.pkl")
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
        months: int = typer.Option(2, help="training months before --test-from"),
        epochs: int = typer.Option(4, min=1),
        boot: int = typer.Option(300, min=10, help="bootstrap resamples for the CIs"),
        tifu: bool = typer.Option(True, help="include the TIFU-KNN baseline (about a minute on Ta-Feng)"),
        plot: Path | None = typer.Option(None, "--plot", help="write a bar chart (PNG) of HR@1 with CIs"),
    ) -> None:
        """Every baseline and the ranker on the category-query time split, with 95% bootstrap CIs."""
        import torch
        from rich.console import Console
        from rich.table import Table

        from voicecart.evaluation.resolution import evaluate_resolution
        from voicecart.ranking import Ranker, RankerConfig

        console = Console()
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        if split not in ("time", "online", "last-order"):
            raise typer.BadParameter(f"{split!r} is not one of time, online, last-order", param_hint="--split")
        if split in ("time", "online") and not test_from:
            raise typer.BadParameter("the time split needs --test-from YYYY-MM-DD", param_hint="--test-from")
        start = _day(test_from, "--test-from") if test_from else 0.0
        end = _day(test_end, "--test-end") if test_end else None
        purchases = _purchases(data)
        ranker_model = None
        if model is not None:
            try:
                ranker_model = Ranker.load(model)
            except (FileNotFoundError, OSError, ValueError) as exc:
                raise typer.BadParameter(f"cannot load a ranker from {model}: {exc}", param_hint="--model") from None
        if split == "online":
            from voicecart.evaluation.online import evaluate_resolution_online

            report = evaluate_resolution_online(purchases, start, end, ranker=ranker_model,
                                                config=RankerConfig(epochs=epochs, drop_features=[]), n_boot=boot,
                                                log=console.print)
        elif split == "time":
            report = evaluate_resolution(purchases, start, end, ranker=ranker_model, months=months,
                                         config=RankerConfig(epochs=epochs), n_boot=boot, tifu=tifu, log=console.print)
        else:
            from voicecart.evaluation.resolution import evaluate_last_order

            report = evaluate_last_order(purchases, ranker=ranker_model, config=RankerConfig(epochs=epochs),
                                         n_boot=boot, tifu=tifu, log=console.print)
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
