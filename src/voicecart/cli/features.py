"""`voicecart features build|apply|materialize|show`: the Feast feature store over the canonical tables."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)
features_app = typer.Typer(help="Feature store: build features, register them in Feast, fill and read the online store.",
                           no_args_is_help=True)

_CONFIG = typer.Option(None, "--config", help="voicecart settings YAML (else VOICECART_CONFIG / env vars).")
_STORE_DIR = typer.Option(None, "--store-dir", help="Local feature store folder (features.store_dir).")
_ONLINE = typer.Option(None, "--online", help="Online store: sqlite | redis (features.online).")
_REDIS = typer.Option(None, "--redis-url", help="Redis host:port (features.online.url; implies --online redis).")


def _settings(config: Path | None, store_dir: Path | None, online: str | None = None, redis_url: str | None = None):
    from voicecart.config import ConfigError, load_settings

    try:
        settings = load_settings(config).features
        overrides: dict = {"store_dir": store_dir} if store_dir is not None else {}
        if online is not None or redis_url is not None:
            chosen = {"type": online or "redis"}
            if redis_url is not None:
                chosen["url"] = redis_url
            overrides["online"] = chosen
        return settings.model_validate({**settings.model_dump(), **overrides}) if overrides else settings
    except (ConfigError, ValueError) as exc:
        _fail(exc)


def _fail(exc: BaseException) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2) from None


def _when(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        _fail(ValueError(f"--{name} {text!r} is not an ISO date/time (e.g. 2001-02-01 or 2001-02-01T12:00:00)"))


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console)


@features_app.command("build")
def build_cmd(
    data: Path = typer.Option(..., "--data", help="A prepared dataset folder (voicecart data prepare)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Only orders before this moment (default: all)."),
    snapshot_every_days: int | None = typer.Option(None, "--snapshot-every-days", min=1,
                                                   help="Also write a snapshot every N days (training joins)."),
    config: Path | None = _CONFIG, store_dir: Path | None = _STORE_DIR,
) -> None:
    """Run the feature SQL (DuckDB) and write the offline parquet tables."""
    from voicecart.data.errors import DataError
    from voicecart.features import FEATURE_TABLES, FeatureStoreError, build_features
    from voicecart.features.store import offline_dir

    settings = _settings(config, store_dir)
    out = offline_dir(settings)
    with _progress() as progress:
        task = progress.add_task("building features", total=len(FEATURE_TABLES))

        def step(table: str, rows: int) -> None:
            progress.update(task, advance=1, description=f"wrote {table} ({rows:,} rows)")

        try:
            summary = build_features(data, out, _when(as_of, "as-of"), snapshot_every_days=snapshot_every_days,
                                     progress=step)
        except (DataError, FeatureStoreError) as exc:
            progress.stop()
            _fail(exc)
    table = Table(title=f"features from {data} → {out} in {summary.seconds:.1f} s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"as of: {', '.join(t.isoformat() for t in summary.as_of[-3:])}"
                  + (f" (+{len(summary.as_of) - 3} earlier snapshots)" if len(summary.as_of) > 3 else ""))


@features_app.command("apply")
def apply_cmd(config: Path | None = _CONFIG, store_dir: Path | None = _STORE_DIR, online: str | None = _ONLINE,
              redis_url: str | None = _REDIS) -> None:
    """Register entities, views, the push source and feature services in the Feast registry (all or nothing)."""
    from voicecart.features import FeatureStoreError
    from voicecart.features.store import apply

    settings = _settings(config, store_dir, online, redis_url)
    with console.status("checking definitions and applying to the Feast registry"):
        try:
            summary = apply(settings)
        except FeatureStoreError as exc:
            _fail(exc)
    console.print(f"registry {summary.registry}: {len(summary.views)} views ({', '.join(summary.views)}), "
                  f"{len(summary.services)} feature services ({', '.join(summary.services)})")


@features_app.command("materialize")
def materialize_cmd(
    start: str = typer.Option("1970-01-01", "--start", help="Window start (ISO, UTC)."),
    end: str | None = typer.Option(None, "--end", help="Window end (ISO, UTC; default now)."),
    view: list[str] | None = typer.Option(None, "--view", help="Only these views (repeatable)."),
    config: Path | None = _CONFIG, store_dir: Path | None = _STORE_DIR, online: str | None = _ONLINE,
    redis_url: str | None = _REDIS,
) -> None:
    """Copy the latest feature rows stamped between --start and --end from the offline tables into the online store."""
    import contextlib
    import io
    from datetime import timezone

    from voicecart.features import FeatureStoreError
    from voicecart.features.store import ONLINE_VIEWS, check_online_reachable, check_window, materialize, open_store

    settings = _settings(config, store_dir, online, redis_url)
    try:
        t0, t1 = check_window(_when(start, "start"), _when(end, "end") or datetime.now(timezone.utc))
        check_online_reachable(settings)
    except FeatureStoreError as exc:
        _fail(exc)
    views = list(view or ONLINE_VIEWS)
    written: dict[str, int] = {}
    with _progress() as progress:
        task = progress.add_task(f"materializing into {settings.online.type}", total=len(views))
        try:
            store = open_store(settings, must_exist=True)
            for name in views:
                progress.update(task, description=f"materializing {name} into {settings.online.type}")
                with contextlib.redirect_stdout(io.StringIO()):  # Feast prints its own banner; we show progress
                    written.update(materialize(settings, t0, t1, views=[name], store=store))
                progress.advance(task)
        except FeatureStoreError as exc:
            progress.stop()
            _fail(exc)
    table = Table(title=f"materialized {t0:%Y-%m-%d} .. {t1:%Y-%m-%d} into {settings.online.type}")
    table.add_column("view")
    table.add_column("entities", justify="right")
    for name in views:
        table.add_row(name, f"{written[name]:,}" if name in written else "?")
    console.print(table)


@features_app.command("show")
def show_cmd(customer: str = typer.Option(..., "--customer", help="Customer id."),
             as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
             top: int = typer.Option(10, help="How many of the customer's products to list."),
             config: Path | None = _CONFIG, store_dir: Path | None = _STORE_DIR, online: str | None = _ONLINE,
             redis_url: str | None = _REDIS) -> None:
    """Read one customer's profile from the online store (the same single read serving makes)."""
    from datetime import timezone

    from voicecart.features import FeatureStoreError
    from voicecart.features.online import ProfileStore

    settings = _settings(config, store_dir, online, redis_url)
    try:
        profile = ProfileStore.from_settings(settings).get(customer)
    except FeatureStoreError as exc:
        _fail(exc)
    if profile is None:
        console.print(f"[yellow]no online profile for customer {customer!r}[/yellow] (unknown, or no orders "
                      "before the last build; run `voicecart features materialize`)")
        raise typer.Exit(code=1)
    if as_json:
        typer.echo(json.dumps(profile.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"customer {customer}", show_header=False)
    table.add_row("orders", str(profile.order_count))
    table.add_row("mean basket size", f"{profile.mean_basket_size:.2f}")
    gap = profile.mean_days_between_orders
    table.add_row("mean days between orders", "-" if gap is None else f"{gap:.1f}")
    last = profile.last_order_ts
    table.add_row("last order", "-" if last is None else f"{datetime.fromtimestamp(last, timezone.utc):%Y-%m-%d %H:%M} UTC")
    table.add_row("distinct products", str(len(profile.product_ids)))
    table.add_row("embedding", "-" if profile.embedding is None else f"{len(profile.embedding)} dims")
    for pid, count in list(zip(profile.product_ids, profile.product_counts))[:top]:
        table.add_row(f"  {pid}", f"bought in {count:g} orders")
    console.print(table)


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
