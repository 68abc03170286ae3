"""Purchase history as compact numpy arrays: the one input of catalogue stats, profiles and features.

``Purchases`` is the canonical ``order_lines ⋈ orders`` of one dataset, one row per (order, product),
times in days since the epoch. ``History`` is what is known about customers *as of* a moment: per
(customer, product) purchase counts and last purchase day, plus customer-level order stats. It is
built either offline from ``Purchases`` (training, evaluation) or online from ONE
:class:`~voicecart.schemas.CustomerProfile` row (serving) — through the same constructor, so the
features computed from it cannot drift between the two paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from voicecart.schemas import CustomerProfile

DAY_S = 86_400.0
_NEVER = np.float64(-1e9)


def to_day(ts: datetime | float | np.datetime64) -> float:
    """A moment as fractional days since the epoch (UTC for naive datetimes)."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        return ts.timestamp() / DAY_S
    if isinstance(ts, np.datetime64):
        return float(ts.astype("datetime64[s]").astype(np.int64)) / DAY_S
    return float(ts) / DAY_S


@dataclass
class Purchases:
    """One row per (order, product), sorted by day. Indices point into the id arrays."""

    customer_ids: np.ndarray  # [U] object
    product_ids: np.ndarray  # [P] object, catalogue order
    products: dict[str, list]  # canonical product columns, catalogue order
    order: np.ndarray  # [L] int32 order index
    customer: np.ndarray  # [L] int32
    product: np.ndarray  # [L] int32
    day: np.ndarray  # [L] float64 days since epoch
    price: np.ndarray  # [L] float32 unit price (nan when unknown)

    def before(self, day: float) -> "Purchases":
        keep = self.day < day
        return self._subset(keep)

    def between(self, start: float, end: float) -> "Purchases":
        return self._subset((self.day >= start) & (self.day < end))

    def where(self, keep: np.ndarray) -> "Purchases":
        """The rows where ``keep`` is true."""
        return self._subset(keep)

    def last_order_split(self) -> tuple["Purchases", "Purchases"]:
        """(everything but each customer's last order, the last orders): the leave-last-out split."""
        if len(self) == 0:
            return self, self
        last_day = np.full(len(self.customer_ids), -np.inf)
        np.maximum.at(last_day, self.customer, self.day)
        is_last_day = self.day == last_day[self.customer]
        last_order = np.full(len(self.customer_ids), -1)
        np.maximum.at(last_order, self.customer[is_last_day], self.order[is_last_day])
        test = self.order == last_order[self.customer]
        return self._subset(~test), self._subset(test)

    def _subset(self, keep: np.ndarray) -> "Purchases":
        return Purchases(self.customer_ids, self.product_ids, self.products, self.order[keep],
                         self.customer[keep], self.product[keep], self.day[keep], self.price[keep])

    def __len__(self) -> int:
        return len(self.day)

    @classmethod
    def from_rows(cls, products: list[dict], lines: list[tuple[str, str, float, float | None]]) -> "Purchases":
        """Small in-memory purchases: ``products`` are canonical product dicts, ``lines`` are
        (customer_id, product_id, day, price); one order per (customer, day)."""
        cols = ("product_id", "title", "brand", "category_l1", "category_l2", "category_l3",
                "category_l1_name", "category_l2_name", "category_l3_name")
        products = sorted(products, key=lambda p: p["product_id"])
        pids = np.asarray([p["product_id"] for p in products], dtype=object)
        pindex = {p: i for i, p in enumerate(pids)}
        cids = np.asarray(sorted({c for c, *_ in lines}), dtype=object)
        cindex = {c: i for i, c in enumerate(cids)}
        rows = sorted(lines, key=lambda r: (r[2], cindex[r[0]], pindex[r[1]]))
        orders = {(c, d): i for i, (c, d) in enumerate(dict.fromkeys((r[0], r[2]) for r in rows))}
        return cls(
            customer_ids=cids, product_ids=pids,
            products={c: [p.get(c) for p in products] for c in cols},
            order=np.asarray([orders[(r[0], r[2])] for r in rows], dtype=np.int32),
            customer=np.asarray([cindex[r[0]] for r in rows], dtype=np.int32),
            product=np.asarray([pindex[r[1]] for r in rows], dtype=np.int32),
            day=np.asarray([r[2] for r in rows], dtype=np.float64),
            price=np.asarray([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float32),
        )

    @classmethod
    def from_dataset(cls, data_dir: str | Path) -> "Purchases":
        """Read a prepared canonical dataset folder (see ``voicecart data prepare``)."""
        from voicecart.data import connect  # duckdb lives in the data layer

        con = connect(Path(data_dir))
        prod = con.sql(
            "SELECT product_id, title, brand, category_l1, category_l2, category_l3, category_l1_name, "
            "category_l2_name, category_l3_name FROM products ORDER BY product_id").to_arrow_table()
        cust = con.sql("SELECT customer_id FROM customers ORDER BY customer_id").to_arrow_table()
        con.register("_p", prod.select(["product_id"]).append_column(
            "pidx", __import__("pyarrow").array(np.arange(prod.num_rows, dtype=np.int32))))
        con.register("_c", cust.append_column(
            "cidx", __import__("pyarrow").array(np.arange(cust.num_rows, dtype=np.int32))))
        lines = con.sql(
            """
            SELECT o.order_id, any_value(c.cidx) AS cidx, any_value(p.pidx) AS pidx,
                   epoch(any_value(o.timestamp)) / 86400.0 AS day,
                   CAST(sum(l.quantity * l.price) / nullif(sum(l.quantity), 0) AS FLOAT) AS price
            FROM order_lines l JOIN orders o USING (order_id)
                 JOIN _c c USING (customer_id) JOIN _p p USING (product_id)
            GROUP BY o.order_id, l.product_id
            ORDER BY day, cidx, o.order_id, pidx
            """).to_arrow_table()
        order_codes = lines.column("order_id").to_numpy(zero_copy_only=False)
        _, order = np.unique(order_codes, return_inverse=True)
        price = lines.column("price").to_numpy(zero_copy_only=False)
        return cls(
            customer_ids=np.asarray(cust.column("customer_id").to_pylist(), dtype=object),
            product_ids=np.asarray(prod.column("product_id").to_pylist(), dtype=object),
            products={name: prod.column(name).to_pylist() for name in prod.column_names},
            order=order.astype(np.int32),
            customer=lines.column("cidx").to_numpy().astype(np.int32),
            product=lines.column("pidx").to_numpy().astype(np.int32),
            day=lines.column("day").to_numpy().astype(np.float64),
            price=np.asarray(price, dtype=np.float32),
        )


@dataclass
class History:
    """What is known about a set of customers as of one moment (arrays sorted by key).

    ``pair_key = customer * n_products + product`` with ``pair_count`` (orders containing the
    product) and ``pair_last`` (day of the last such order); customer rows hold order stats.
    """

    n_products: int
    pair_key: np.ndarray  # [K] int64 sorted
    pair_count: np.ndarray  # [K] float32
    pair_last: np.ndarray  # [K] float64 day
    order_count: np.ndarray  # [U] float32
    mean_interval: np.ndarray  # [U] float32 days between orders (nan when < 2 orders)
    last_order: np.ndarray  # [U] float64 day (nan when none)
    embedding: np.ndarray | None = None  # [U, E] float32 customer embeddings (C-STAR), optional

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_pairs(cls, n_products: int, customer: np.ndarray, product: np.ndarray, count: np.ndarray,
                   last: np.ndarray, order_count: np.ndarray, mean_interval: np.ndarray,
                   last_order: np.ndarray, embedding: np.ndarray | None = None) -> "History":
        key = customer.astype(np.int64) * n_products + product.astype(np.int64)
        order = np.argsort(key, kind="stable")
        return cls(n_products, key[order], count[order].astype(np.float32), last[order].astype(np.float64),
                   order_count.astype(np.float32), mean_interval.astype(np.float32),
                   last_order.astype(np.float64), embedding)

    @classmethod
    def from_purchases(cls, purchases: Purchases, as_of: float) -> "History":
        """History of every customer from purchases strictly before day ``as_of`` (no leakage)."""
        past = purchases.before(as_of)
        n_p, n_u = len(purchases.product_ids), len(purchases.customer_ids)
        key = past.customer.astype(np.int64) * n_p + past.product
        uniq, inv = np.unique(key, return_inverse=True)
        count = np.bincount(inv, minlength=len(uniq)).astype(np.float32)
        last = np.full(len(uniq), -np.inf)
        np.maximum.at(last, inv, past.day)
        # customer order stats: one order = one distinct order index
        o_uniq, o_first = np.unique(past.order, return_index=True)
        o_cust, o_day = past.customer[o_first], past.day[o_first]
        order_count = np.bincount(o_cust, minlength=n_u).astype(np.float32)
        first = np.full(n_u, np.inf)
        np.minimum.at(first, o_cust, o_day)
        last_order = np.full(n_u, -np.inf)
        np.maximum.at(last_order, o_cust, o_day)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_interval = np.where(order_count > 1, (last_order - first) / np.maximum(order_count - 1, 1), np.nan)
        last_order = np.where(order_count > 0, last_order, np.nan)
        return cls.from_pairs(n_p, (uniq // n_p), (uniq % n_p), count, last, order_count, mean_interval,
                              last_order)

    @classmethod
    def from_profile(cls, profile: CustomerProfile | None, product_index: dict[str, int],
                     n_products: int) -> "History":
        """A one-customer history (customer row 0) from the online profile row.

        Products unknown to the catalogue are dropped; a missing profile is an empty history.
        """
        if profile is None:
            empty = np.zeros(0)
            return cls.from_pairs(n_products, empty.astype(np.int64), empty.astype(np.int64), empty, empty,
                                  np.zeros(1), np.full(1, np.nan), np.full(1, np.nan))
        idx = [product_index.get(p, -1) for p in profile.product_ids]
        keep = np.asarray([i >= 0 for i in idx], dtype=bool)
        prod = np.asarray(idx, dtype=np.int64)[keep] if keep.size else np.zeros(0, dtype=np.int64)
        count = np.asarray(profile.product_counts, dtype=np.float64)[keep] if keep.size else np.zeros(0)
        last = np.asarray(profile.product_last_ts, dtype=np.float64)[keep] / DAY_S if keep.size else np.zeros(0)
        mean_int = profile.mean_days_between_orders
        last_order = profile.last_order_ts / DAY_S if profile.last_order_ts is not None else np.nan
        emb = None if profile.embedding is None else np.asarray([profile.embedding], dtype=np.float32)
        return cls.from_pairs(n_products, np.zeros(len(prod), dtype=np.int64), prod, count, last,
                              np.asarray([profile.order_count]), np.asarray([np.nan if mean_int is None else mean_int]),
                              np.asarray([last_order]), emb)

    # -- reading ------------------------------------------------------------------------------
    def lookup(self, customer: np.ndarray, product: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(count, last day) per (customer, product) row; (0, -inf) where never bought."""
        key = customer.astype(np.int64) * self.n_products + product.astype(np.int64)
        pos = np.searchsorted(self.pair_key, key)
        pos_c = np.minimum(pos, max(len(self.pair_key) - 1, 0))
        found = (pos < len(self.pair_key)) & (self.pair_key[pos_c] == key) if len(self.pair_key) else np.zeros(len(key), bool)
        count = np.where(found, self.pair_count[pos_c] if len(self.pair_key) else 0, 0).astype(np.float32)
        last = np.where(found, self.pair_last[pos_c] if len(self.pair_key) else -np.inf, -np.inf)
        return count, last

    def customer_items(self, customer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(products, counts, last days) of one customer."""
        lo = np.searchsorted(self.pair_key, customer * self.n_products)
        hi = np.searchsorted(self.pair_key, (customer + 1) * self.n_products)
        return (self.pair_key[lo:hi] % self.n_products).astype(np.int64), self.pair_count[lo:hi], self.pair_last[lo:hi]

    def profile(self, customer: int, customer_id: str, product_ids: np.ndarray,
                as_of: datetime | None = None) -> CustomerProfile:
        """The online profile row of one customer, as the feature store would serve it."""
        prods, counts, last = self.customer_items(customer)
        mi = float(self.mean_interval[customer])
        lo = float(self.last_order[customer])
        return CustomerProfile(
            customer_id=customer_id, order_count=int(self.order_count[customer]),
            mean_days_between_orders=None if np.isnan(mi) else mi,
            last_order_ts=None if np.isnan(lo) else lo * DAY_S,
            product_ids=[str(product_ids[p]) for p in prods], product_counts=[float(c) for c in counts],
            product_last_ts=[float(t) * DAY_S for t in last],
            embedding=None if self.embedding is None else [float(x) for x in self.embedding[customer]],
            as_of=as_of)
