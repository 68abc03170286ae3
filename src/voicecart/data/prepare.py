"""`voicecart data prepare` and `describe`: run one adapter, validate, write atomically, summarise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from voicecart.data import completejourney, instacart, lines, synthetic, tafeng
from voicecart.data.errors import DataError
from voicecart.data.store import connect, read_manifest, validate_references, write_dataset
from voicecart.schemas.canonical import Manifest

Source = Literal["tafeng", "completejourney", "instacart", "lines", "synthetic"]
SOURCES: tuple[str, ...] = ("tafeng", "completejourney", "instacart", "lines", "synthetic")


def prepare(source: str, out: Path, *, path: Path | None = None, cache_dir: Path = Path(".cache"),
            synthetic_config: synthetic.SyntheticConfig | None = None,
            step: Callable[[str], None] = lambda _: None) -> Manifest:
    """Turn one source into a prepared dataset folder; ``step`` is told each stage (for progress)."""
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if source in ("instacart", "lines") and path is None:
        raise DataError(f"--path is required for source {source!r}")
    step("read")
    extras = {}
    if source == "tafeng":
        tables, stats = tafeng.load(path, cache_dir=cache_dir)
    elif source == "completejourney":
        tables, stats = completejourney.load(path, cache_dir=cache_dir)
    elif source == "instacart":
        tables, stats = instacart.load(path)
    elif source == "lines":
        tables, stats = lines.load(path)
    else:
        cfg = synthetic_config or synthetic.SyntheticConfig()
        tables, planted = synthetic.generate(cfg)
        stats, extras = synthetic.describe_config(cfg), {"planted": planted}
    step("validate")
    validate_references(tables, str(path) if path else source)
    step("write")
    return write_dataset(tables, Path(out), source=source, source_path=str(path) if path else None,
                         stats=stats, extras=extras)


def describe(folder: Path) -> dict:
    """Counts, date range, category depth and orders-per-customer percentiles of a prepared dataset."""
    manifest = read_manifest(folder)
    con = connect(folder)
    first, last = con.execute("SELECT min(timestamp), max(timestamp) FROM orders").fetchall()[0]
    depth = con.execute("""SELECT count(DISTINCT category_l1), count(DISTINCT category_l2),
                                  count(DISTINCT category_l3) FROM products""").fetchall()[0]
    pct = con.execute("""SELECT quantile_cont(n, [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) FROM
                         (SELECT count(*) AS n FROM orders GROUP BY customer_id)""").fetchall()[0][0]
    basket = con.execute("SELECT avg(n) FROM (SELECT count(*) n FROM order_lines GROUP BY order_id)").fetchall()[0][0]
    named = con.execute("SELECT count(*) FILTER (WHERE title IS NOT NULL) FROM products").fetchall()[0][0]
    return {
        "source": manifest.source,
        "schema_version": manifest.schema_version,
        "rows": {name: entry.rows for name, entry in manifest.tables.items()},
        "first_order": first.isoformat() if first else None,
        "last_order": last.isoformat() if last else None,
        "categories_per_level": list(depth),
        "products_with_titles": named,
        "mean_lines_per_order": round(basket or 0.0, 2),
        "orders_per_customer_percentiles": dict(zip(["p10", "p25", "p50", "p75", "p90", "p99"],
                                                    [round(x, 1) for x in pct or []])),
        "stats": manifest.stats,
    }
