"""Feature SQL over the canonical tables, written once in DuckDB's dialect.

Every query is a template with one parameter, ``{as_of}``: only orders strictly *before* that
moment count, and each output row carries ``event_timestamp = as_of``. That makes every feature
row a point-in-time snapshot, so a training example stamped ``t`` joined to the latest snapshot
``<= t`` can never see an order from its own future.

The same text runs on BigQuery through :func:`to_bigquery` (sqlglot, unsupported constructs are
errors, not warnings). Rules that keep it portable: epoch seconds via
``date_diff('second', epoch, ts)``, ordered ``ARRAY_AGG`` only with ``DESC`` keys (both engines
agree on where NULLs go), no ``COUNT(DISTINCT) FILTER`` (pre-aggregate instead).
"""

from __future__ import annotations

from datetime import datetime

import sqlglot
from sqlglot.errors import ErrorLevel

POPULARITY_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)
CATEGORY_LEVELS: tuple[int, ...] = (1, 2, 3)

_EPOCH = "TIMESTAMP '1970-01-01 00:00:00'"


def _seconds(expr: str) -> str:
    return f"date_diff('second', {_EPOCH}, {expr})"


# Per customer × product: how many of the customer's orders held the product, when last.
CUSTOMER_PRODUCT = f"""
WITH bought AS (
    SELECT o.customer_id, o.order_id, o.timestamp, l.product_id, SUM(l.quantity) AS quantity
    FROM orders AS o
    JOIN order_lines AS l ON l.order_id = o.order_id
    WHERE o.timestamp < {{as_of}}
    GROUP BY o.customer_id, o.order_id, o.timestamp, l.product_id
)
SELECT
    customer_id,
    product_id,
    {{as_of}} AS event_timestamp,
    CAST(COUNT(*) AS DOUBLE) AS purchase_count,
    SUM(quantity) AS quantity,
    CAST({_seconds('MAX(timestamp)')} AS DOUBLE) AS last_purchase_ts
FROM bought
GROUP BY customer_id, product_id
"""

# Per customer: orders, basket size, days between orders, recency, category shares per level.
_SHARES = "\n".join(
    f"""
, shares_l{k} AS (
    SELECT customer_id,
        ARRAY_AGG(category ORDER BY share DESC, category DESC) AS category_l{k}_ids,
        ARRAY_AGG(share ORDER BY share DESC, category DESC) AS category_l{k}_shares
    FROM (
        SELECT l.customer_id, p.category_l{k} AS category,
            CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY l.customer_id) AS share
        FROM lines AS l JOIN products AS p ON p.product_id = l.product_id
        GROUP BY l.customer_id, p.category_l{k}
    ) AS s
    GROUP BY customer_id
)"""
    for k in CATEGORY_LEVELS
)
CUSTOMER_FEATURES = f"""
WITH lines AS (
    SELECT o.customer_id, o.order_id, o.timestamp, l.product_id
    FROM orders AS o
    JOIN order_lines AS l ON l.order_id = o.order_id
    WHERE o.timestamp < {{as_of}}
), baskets AS (
    SELECT customer_id, order_id, MIN(timestamp) AS timestamp, COUNT(DISTINCT product_id) AS basket_size
    FROM lines
    GROUP BY customer_id, order_id
), customer AS (
    SELECT customer_id,
        COUNT(*) AS order_count,
        CAST(AVG(basket_size) AS DOUBLE) AS mean_basket_size,
        CAST(date_diff('second', MIN(timestamp), MAX(timestamp)) AS DOUBLE) / 86400.0
            / NULLIF(COUNT(*) - 1, 0) AS mean_days_between_orders,
        CAST({_seconds('MAX(timestamp)')} AS DOUBLE) AS last_order_ts,
        CAST(date_diff('second', MAX(timestamp), {{as_of}}) AS DOUBLE) / 86400.0 AS days_since_last_order
    FROM baskets
    GROUP BY customer_id
){_SHARES}
SELECT c.customer_id, {{as_of}} AS event_timestamp,
    c.order_count, c.mean_basket_size, c.mean_days_between_orders, c.last_order_ts, c.days_since_last_order,
    {", ".join(f"s{k}.category_l{k}_ids, s{k}.category_l{k}_shares" for k in CATEGORY_LEVELS)}
FROM customer AS c
{" ".join(f"JOIN shares_l{k} AS s{k} ON s{k}.customer_id = c.customer_id" for k in CATEGORY_LEVELS)}
"""

# The online profile: customer-level features + the customer's products as parallel arrays,
# most bought first. One row per customer with at least one order before as_of.
CUSTOMER_PROFILE = f"""
WITH history AS ({CUSTOMER_PRODUCT}
), products_bought AS (
    SELECT customer_id,
        ARRAY_AGG(product_id ORDER BY purchase_count DESC, last_purchase_ts DESC, product_id DESC) AS product_ids,
        ARRAY_AGG(purchase_count ORDER BY purchase_count DESC, last_purchase_ts DESC, product_id DESC)
            AS product_counts,
        ARRAY_AGG(last_purchase_ts ORDER BY purchase_count DESC, last_purchase_ts DESC, product_id DESC)
            AS product_last_ts
    FROM history
    GROUP BY customer_id
), customer AS ({CUSTOMER_FEATURES}
)
SELECT c.customer_id, c.event_timestamp, c.order_count, c.mean_basket_size, c.mean_days_between_orders,
    c.last_order_ts, b.product_ids, b.product_counts, b.product_last_ts
FROM customer AS c
JOIN products_bought AS b ON b.customer_id = c.customer_id
"""

# Per product: price, popularity (orders holding it) overall and over 7/30/90 days, and its
# share of its subclass (category_l3) over the same windows. One row per catalogue product.
_WINDOWS = ",\n        ".join(
    f"COUNT(*) FILTER (WHERE timestamp >= {{as_of}} - INTERVAL {d} DAY) AS popularity_{d}d"
    for d in POPULARITY_WINDOWS_DAYS
)
_PRODUCT_COLUMNS = ",\n    ".join(
    f"CAST(COALESCE(s.popularity_{d}d, 0) AS DOUBLE) AS popularity_{d}d,\n    "
    f"CAST(COALESCE(s.popularity_{d}d, 0) AS DOUBLE) / "
    f"NULLIF(SUM(COALESCE(s.popularity_{d}d, 0)) OVER (PARTITION BY p.category_l3), 0) AS category_share_{d}d"
    for d in POPULARITY_WINDOWS_DAYS
)
PRODUCT_FEATURES = f"""
WITH sold AS (
    SELECT l.product_id, o.order_id, MIN(o.timestamp) AS timestamp, AVG(l.price) AS price
    FROM order_lines AS l
    JOIN orders AS o ON o.order_id = l.order_id
    WHERE o.timestamp < {{as_of}}
    GROUP BY l.product_id, o.order_id
), stats AS (
    SELECT product_id,
        COUNT(*) AS popularity_all,
        {_WINDOWS},
        AVG(price) AS price
    FROM sold
    GROUP BY product_id
)
SELECT p.product_id, {{as_of}} AS event_timestamp,
    p.category_l1, p.category_l2, p.category_l3,
    CAST(s.price AS DOUBLE) AS price,
    CAST(COALESCE(s.popularity_all, 0) AS DOUBLE) AS popularity_all,
    {_PRODUCT_COLUMNS}
FROM products AS p
LEFT JOIN stats AS s ON s.product_id = p.product_id
"""

QUERIES: dict[str, str] = {
    "customer_features": CUSTOMER_FEATURES,
    "customer_profile": CUSTOMER_PROFILE,
    "customer_product": CUSTOMER_PRODUCT,
    "product_features": PRODUCT_FEATURES,
}
"""Every feature query, by the name of the table (and Feast source) it produces."""


def as_of_literal(as_of: datetime) -> str:
    """A portable timestamp literal (naive UTC, as the canonical ``orders.timestamp``)."""
    if as_of.tzinfo is not None:
        from datetime import timezone

        as_of = as_of.astimezone(timezone.utc).replace(tzinfo=None)
    return f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S}'"


def render(name: str, as_of: datetime) -> str:
    """The DuckDB text of one feature query at ``as_of``."""
    try:
        template = QUERIES[name]
    except KeyError:
        raise KeyError(f"unknown feature query {name!r}; known: {', '.join(QUERIES)}") from None
    return template.format(as_of=as_of_literal(as_of))


def to_bigquery(sql: str, dataset: str | None = None) -> str:
    """Transpile DuckDB feature SQL to BigQuery; raises ``sqlglot.errors.UnsupportedError`` on anything lossy.

    With ``dataset`` (``project.dataset``), canonical table names are qualified with it.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dataset:
        from sqlglot import exp

        canonical = {"orders", "order_lines", "products", "customers"}
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if table.name in canonical and table.name not in ctes and not table.args.get("db"):
                parts = dataset.split(".")
                table.set("db", exp.to_identifier(parts[-1]))
                if len(parts) > 1:
                    table.set("catalog", exp.to_identifier(parts[0]))
    return tree.sql(dialect="bigquery", unsupported_level=ErrorLevel.RAISE, pretty=True)
