"""Feature SQL over the canonical tables, written once in DuckDB's dialect: THE point-in-time snapshot.

Every query reads the canonical tables plus one small table of *moments*: ``snapshot_requests``
(``customer_id``, ``as_of``: "this customer, as known at that moment") for the customer queries,
``snapshot_moments`` (``as_of``) for the product query. Only orders strictly *before* a row's
``as_of`` count, and each output row carries ``event_timestamp = as_of``, so a training example
stamped ``t`` and the online row served at ``t`` hold exactly the same numbers.

=====================  ====================================================================================
query                  one row per
=====================  ====================================================================================
``customer_product``   (request, product bought before it): orders holding it (also time-decayed),
                       quantity, last purchase
``customer_stats``     request: orders, basket size, days between orders, last order
``customer_profile``   request: ``customer_stats`` + the ``customer_product`` rows as parallel arrays
                       (most bought first) — the ONE online row serving reads per request
``customer_features``  request: category shares per level (C-STAR's downstream heads)
``product_stats``      (product, moment): popularity overall and over :data:`POPULARITY_WINDOWS_DAYS`,
                       time-decayed popularity, buyers, first sale, price level in its category
=====================  ====================================================================================

Times leave SQL as epoch seconds (``DOUBLE``). The same text runs on BigQuery through
:func:`to_bigquery` (sqlglot; unsupported constructs are errors, not warnings). Rules that keep it
portable: epoch seconds via ``date_diff('second', epoch, ts)``, every sort key in a window or an ordered
``ARRAY_AGG`` either ``DESC`` or ``ASC NULLS FIRST`` (BigQuery's defaults: DuckDB's ``ASC`` means NULLS
LAST, which BigQuery cannot say there), ``CASE`` instead of aggregate ``FILTER``, ``CAST`` every ``SUM``
of integers (DuckDB: HUGEINT, BigQuery: INT64), nothing NULL into ``ARRAY_AGG`` (BigQuery refuses NULL
array elements), no engine-specific joins (ASOF, IEJoin hints). ``tests/integration/test_bigquery_emulator.py``
runs every query on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from voicecart.schemas.times import DAY_S, naive_utc

POPULARITY_WINDOWS_DAYS: tuple[int, ...] = (7, 30)
"""Sliding popularity windows of ``product_stats`` (``popularity_7d``, ``popularity_30d``)."""
RECENT_DAYS: int = 7
"""The window the ranker and the baselines call "recent popularity"."""
DECAY_HALF_LIFE_DAYS: float = 30.0
"""Half-life of ``popularity_decayed``: an order counts 1 today, 0.5 after 30 days."""
CATEGORY_LEVELS: tuple[int, ...] = (1, 2, 3)

REQUESTS = "snapshot_requests"
"""Table of (customer_id, as_of) rows the customer queries answer."""
MOMENTS = "snapshot_moments"
"""Table of moments (as_of) the product query answers."""
CUTS = "snapshot_cuts"
"""Table of moments (as_of) at which every customer's history is taken (product vectors are fit there)."""
CANONICAL = ("orders", "order_lines", "products", "customers")

_EPOCH = "TIMESTAMP '1970-01-01 00:00:00'"
_HALF_LIFE_S = DECAY_HALF_LIFE_DAYS * DAY_S


def _seconds(expr: str) -> str:
    return f"date_diff('second', {_EPOCH}, {expr})"


# -- customers ----------------------------------------------------------------------------------
# One row per (order, product) of each request's customer before its moment.
_BOUGHT = """bought AS (
    SELECT r.customer_id, r.as_of, o.order_id, o.timestamp, l.product_id, SUM(l.quantity) AS quantity
    FROM {requests} AS r
    JOIN orders AS o ON o.customer_id = r.customer_id AND o.timestamp < r.as_of
    JOIN order_lines AS l ON l.order_id = o.order_id
    GROUP BY r.customer_id, r.as_of, o.order_id, o.timestamp, l.product_id
)"""
_PAIRS = f"""pairs AS (
    SELECT customer_id, as_of, product_id,
        CAST(COUNT(*) AS DOUBLE) AS purchase_count,
        CAST(SUM(quantity) AS DOUBLE) AS quantity,
        SUM(POW(0.5, CAST(date_diff('second', timestamp, as_of) AS DOUBLE) / {_HALF_LIFE_S})) AS decayed_count,
        CAST({_seconds('MAX(timestamp)')} AS DOUBLE) AS last_purchase_ts
    FROM bought
    GROUP BY customer_id, as_of, product_id
)"""
_STATS = f"""baskets AS (
    SELECT customer_id, as_of, order_id, MIN(timestamp) AS timestamp, COUNT(DISTINCT product_id) AS basket_size
    FROM bought
    GROUP BY customer_id, as_of, order_id
), stats AS (
    SELECT customer_id, as_of,
        COUNT(*) AS order_count,
        CAST(AVG(basket_size) AS DOUBLE) AS mean_basket_size,
        CAST(date_diff('second', MIN(timestamp), MAX(timestamp)) AS DOUBLE) / {DAY_S}
            / NULLIF(COUNT(*) - 1, 0) AS mean_days_between_orders,
        CAST({_seconds('MAX(timestamp)')} AS DOUBLE) AS last_order_ts
    FROM baskets
    GROUP BY customer_id, as_of
)"""

CUSTOMER_PRODUCT = f"""
WITH {_BOUGHT}, {_PAIRS}
SELECT customer_id, as_of AS event_timestamp, product_id, purchase_count, quantity, decayed_count, last_purchase_ts
FROM pairs
"""

CUSTOMER_STATS = f"""
WITH {_BOUGHT}, {_STATS}
SELECT customer_id, as_of AS event_timestamp, order_count, mean_basket_size, mean_days_between_orders, last_order_ts
FROM stats
"""

_ORDER = "purchase_count DESC, last_purchase_ts DESC, product_id DESC"
CUSTOMER_PROFILE = f"""
WITH {_BOUGHT}, {_PAIRS}, {_STATS}, products_bought AS (
    SELECT customer_id, as_of,
        ARRAY_AGG(product_id ORDER BY {_ORDER}) AS product_ids,
        ARRAY_AGG(purchase_count ORDER BY {_ORDER}) AS product_counts,
        ARRAY_AGG(last_purchase_ts ORDER BY {_ORDER}) AS product_last_ts
    FROM pairs
    GROUP BY customer_id, as_of
)
SELECT s.customer_id, s.as_of AS event_timestamp, s.order_count, s.mean_basket_size, s.mean_days_between_orders,
    s.last_order_ts, b.product_ids, b.product_counts, b.product_last_ts
FROM stats AS s
JOIN products_bought AS b ON b.customer_id = s.customer_id AND b.as_of = s.as_of
"""

_SHARES = "\n".join(
    f"""
, shares_l{k} AS (
    SELECT customer_id, as_of,
        ARRAY_AGG(category ORDER BY share DESC, category DESC) AS category_l{k}_ids,
        ARRAY_AGG(share ORDER BY share DESC, category DESC) AS category_l{k}_shares
    FROM (
        SELECT b.customer_id, b.as_of, p.category_l{k} AS category,
            CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY b.customer_id, b.as_of) AS share
        FROM bought AS b JOIN products AS p ON p.product_id = b.product_id
        GROUP BY b.customer_id, b.as_of, p.category_l{k}
    ) AS s
    GROUP BY customer_id, as_of
)"""
    for k in CATEGORY_LEVELS
)
CUSTOMER_FEATURES = f"""
WITH {_BOUGHT}, {_STATS}{_SHARES}
SELECT c.customer_id, c.as_of AS event_timestamp,
    c.order_count, c.mean_basket_size, c.mean_days_between_orders, c.last_order_ts,
    CAST(date_diff('second', {_EPOCH}, c.as_of) AS DOUBLE) / {DAY_S} - c.last_order_ts / {DAY_S} AS days_since_last_order,
    {", ".join(f"s{k}.category_l{k}_ids, s{k}.category_l{k}_shares" for k in CATEGORY_LEVELS)}
FROM stats AS c
{" ".join(f"JOIN shares_l{k} AS s{k} ON s{k}.customer_id = c.customer_id AND s{k}.as_of = c.as_of"
          for k in CATEGORY_LEVELS)}
"""

ALL_CUSTOMERS = "(SELECT DISTINCT o.customer_id, m.as_of FROM orders AS o JOIN {moments} AS m ON o.timestamp < m.as_of)"
"""The requests "every customer with an order before each moment" (what a materialization serves)."""


# -- products -----------------------------------------------------------------------------------
# Cumulative sums over the sorted moments: each sale lands in the one bucket [previous moment, moment),
# running sums per product over the buckets give "everything before the moment" without joining every
# sale with every moment; a window's count is the running sum minus the running sum one window earlier
# (those earlier moments are part of the grid: see voicecart.features.snapshot.product_grid).
# Decayed popularity sum_{t < m} 0.5^((m - t)/h) = 2^(-(m - t0)/h) * sum_{t < m} 2^((t - t0)/h).
_WINDOW_JOINS = "\n".join(
    f"LEFT JOIN cumulative AS w{d} ON w{d}.product_id = c.product_id AND w{d}.as_of = c.as_of - INTERVAL {d} DAY"
    for d in POPULARITY_WINDOWS_DAYS)
_WINDOW_COLUMNS = "".join(
    f"\n    c.popularity_all - COALESCE(w{d}.popularity_all, 0) AS popularity_{d}d," for d in POPULARITY_WINDOWS_DAYS)
PRODUCT_STATS = f"""
WITH sold AS (
    SELECT l.product_id, o.customer_id, o.timestamp,
        SUM(l.quantity * l.price) / NULLIF(SUM(l.quantity), 0) AS price
    FROM order_lines AS l
    JOIN orders AS o ON o.order_id = l.order_id
    GROUP BY l.product_id, o.order_id, o.customer_id, o.timestamp
), first_bought AS (
    SELECT product_id, customer_id, MIN(timestamp) AS timestamp FROM sold GROUP BY product_id, customer_id
), grid AS (
    SELECT as_of, wanted, LAG(as_of) OVER (ORDER BY as_of NULLS FIRST) AS previous FROM {{moments}}
), sales AS (
    SELECT s.product_id, g.as_of,
        COUNT(*) AS orders,
        SUM(POW(2.0, CAST(date_diff('second', {{t0}}, s.timestamp) AS DOUBLE) / {_HALF_LIFE_S})) AS decay_mass,
        SUM(CASE WHEN s.price > 0 THEN LN(s.price) ELSE 0 END) AS log_price_sum,
        SUM(CASE WHEN s.price > 0 THEN 1 ELSE 0 END) AS priced,
        MIN(s.timestamp) AS first_sale
    FROM sold AS s
    JOIN grid AS g ON s.timestamp < g.as_of AND (g.previous IS NULL OR s.timestamp >= g.previous)
    GROUP BY s.product_id, g.as_of
), buyers AS (
    SELECT f.product_id, g.as_of, COUNT(*) AS buyers
    FROM first_bought AS f
    JOIN grid AS g ON f.timestamp < g.as_of AND (g.previous IS NULL OR f.timestamp >= g.previous)
    GROUP BY f.product_id, g.as_of
), dense AS (
    SELECT p.product_id, p.category_l3, g.as_of, g.wanted,
        COALESCE(s.orders, 0) AS orders, COALESCE(s.decay_mass, 0) AS decay_mass,
        COALESCE(s.log_price_sum, 0) AS log_price_sum, COALESCE(s.priced, 0) AS priced, s.first_sale,
        COALESCE(b.buyers, 0) AS buyers
    FROM products AS p
    CROSS JOIN grid AS g
    LEFT JOIN sales AS s ON s.product_id = p.product_id AND s.as_of = g.as_of
    LEFT JOIN buyers AS b ON b.product_id = p.product_id AND b.as_of = g.as_of
    WHERE p.product_id IN (SELECT product_id FROM sold)
), cumulative AS (
    SELECT product_id, category_l3, as_of, wanted,
        CAST(SUM(orders) OVER w AS DOUBLE) AS popularity_all,
        CAST(SUM(decay_mass) OVER w AS DOUBLE) AS decay_mass,
        CAST(SUM(log_price_sum) OVER w AS DOUBLE) AS log_price_sum,
        CAST(SUM(priced) OVER w AS DOUBLE) AS priced,
        MIN(first_sale) OVER w AS first_sale,
        CAST(SUM(buyers) OVER w AS DOUBLE) AS buyers
    FROM dense
    WINDOW w AS (PARTITION BY product_id ORDER BY as_of NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), priced AS (
    SELECT c.*, CASE WHEN c.priced > 0 THEN c.log_price_sum / c.priced END AS log_price FROM cumulative AS c
)
SELECT c.product_id, c.as_of AS event_timestamp,
    c.popularity_all,{_WINDOW_COLUMNS}
    c.decay_mass * POW(2.0, -CAST(date_diff('second', {{t0}}, c.as_of) AS DOUBLE) / {_HALF_LIFE_S})
        AS popularity_decayed,
    c.buyers,
    CAST({_seconds('c.first_sale')} AS DOUBLE) AS first_sale_ts,
    EXP(c.log_price) AS price,
    COALESCE(c.log_price - AVG(c.log_price) OVER (PARTITION BY c.as_of, c.category_l3), 0) AS rel_price
FROM priced AS c
{_WINDOW_JOINS}
WHERE c.wanted AND c.popularity_all > 0
"""

QUERIES: dict[str, str] = {
    "customer_product": CUSTOMER_PRODUCT,
    "customer_stats": CUSTOMER_STATS,
    "customer_profile": CUSTOMER_PROFILE,
    "customer_features": CUSTOMER_FEATURES,
    "product_stats": PRODUCT_STATS,
}
"""Every feature query, by the name of the table (and Feast source) it produces."""
CUSTOMER_QUERIES = ("customer_product", "customer_stats", "customer_profile", "customer_features")


def timestamp_literal(moment: datetime) -> str:
    """A portable timestamp literal (naive UTC, as the canonical ``orders.timestamp``)."""
    return f"TIMESTAMP '{naive_utc(moment):%Y-%m-%d %H:%M:%S}'"


def render(name: str, *, requests: str = REQUESTS, moments: str = MOMENTS, t0: datetime | None = None) -> str:
    """The DuckDB text of one feature query over the given request / moment tables.

    ``requests`` may be :data:`ALL_CUSTOMERS` (every customer with history at each moment);
    ``t0`` (``product_stats`` only) is the reference moment of the decay sums: any moment near the
    snapshot's, e.g. its first.
    """
    try:
        template = QUERIES[name]
    except KeyError:
        raise KeyError(f"unknown feature query {name!r}; known: {', '.join(QUERIES)}") from None
    requests = requests.format(moments=moments)
    return template.format(requests=requests, moments=moments,
                           t0=timestamp_literal(t0 or datetime(2000, 1, 1)))


def product_grid(moments: Sequence[datetime]) -> list[tuple[datetime, bool]]:
    """The moments ``product_stats`` runs on: the wanted ones, plus each one window earlier
    (``(moment, wanted)``, sorted) — a window's count is read as a difference of running sums."""
    wanted = {naive_utc(m) for m in moments}
    grid = set(wanted) | {m - timedelta(days=d) for m in wanted for d in POPULARITY_WINDOWS_DAYS}
    return [(m, m in wanted) for m in sorted(grid)]


def to_bigquery(sql: str, dataset: str | None = None) -> str:
    """Transpile DuckDB feature SQL to BigQuery; raises ``sqlglot.errors.UnsupportedError`` on anything lossy.

    With ``dataset`` (``project.dataset``), canonical tables and the moment tables are qualified with it.
    A DuckDB ``TIMESTAMP`` (naive, UTC here: the canonical tables' type) becomes a BigQuery ``TIMESTAMP``,
    not sqlglot's ``DATETIME``: the tables' columns are TIMESTAMP, and BigQuery compares or subtracts no
    TIMESTAMP with a DATETIME.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dataset:
        ours = set(CANONICAL) | {REQUESTS, MOMENTS, CUTS, "feedback_events"}  # offline.FEEDBACK_TABLE
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        parts = dataset.split(".")
        for table in tree.find_all(exp.Table):
            if table.name in ours and table.name not in ctes and not table.args.get("db"):
                table.set("db", exp.to_identifier(parts[-1]))
                if len(parts) > 1:
                    table.set("catalog", exp.to_identifier(parts[0]))
    for dtype in tree.find_all(exp.DataType):
        if dtype.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ):
            dtype.set("this", exp.DataType.Type.TIMESTAMPTZ)
    return tree.sql(dialect="bigquery", unsupported_level=ErrorLevel.RAISE, pretty=True)
