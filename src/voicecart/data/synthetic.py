"""Synthetic grocery data with PLANTED structure, so tests can check that models recover it.

What is planted (all deterministic by seed):

* **Segments.** Every customer belongs to one of ``n_segments``; the segment fixes the customer's
  ``age_group`` (with ``label_noise``) and a sparse preference over subclasses.
* **Brand loyalty.** For every (customer, subclass) there is one preferred product, chosen by a
  hash of the pair; a line in that subclass is that product with probability ``loyalty``.
  :func:`preferred_product` recomputes it, so nothing needs storing to check a model.
* **Trajectory regularity.** Each segment has a routine: a cycle of ``routine_length`` subclasses.
  Basket *t* of a customer holds the routine's subclass at position ``(offset + t) mod L`` with
  probability ``routine_share`` per line, so the next basket's categories follow from the last.
* **A planted brand switch** (optional, ``switch_day``): from that day on, ``switch_share`` of the
  customers prefer another product (another brand) in ``switch_subclass_share`` of the subclasses;
  :func:`preferred_product_on` gives the preference on a day, :func:`switches` who switched where.

Generation is vectorised numpy, so 1M customers fit in seconds and memory stays bounded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voicecart.data.store import CanonicalTables

AGE_GROUPS = ["<25", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59", "60-64", ">65"]
_BRANDS = ["acme", "fresh farms", "golden", "nature's best", "blue hill", "sunrise", "green valley", "kirkland"]
_SIZES = ["small", "medium", "large", "family size", "1 l", "2 l", "500 g", "1 kg"]
_NOUNS = ["milk", "bread", "cheese", "yogurt", "apples", "bananas", "rice", "pasta", "coffee", "tea", "juice",
          "eggs", "butter", "cereal", "chicken", "beef", "salmon", "tofu", "beans", "soup", "chips", "cookies",
          "water", "soda", "wine", "beer", "shampoo", "soap", "detergent", "tissues", "diapers", "dog food"]


@dataclass(frozen=True)
class SyntheticConfig:
    n_customers: int = 1000
    n_departments: int = 6
    aisles_per_department: int = 4
    subclasses_per_aisle: int = 3
    products_per_subclass: int = 6
    n_segments: int = 5
    mean_orders: float = 8.0
    mean_basket: float = 4.0
    mean_days_between: float = 7.0
    loyalty: float = 0.85
    routine_length: int = 6
    routine_share: float = 0.5
    label_noise: float = 0.1
    start: datetime = datetime(2020, 1, 1)
    seed: int = 0
    switch_day: int | None = None
    """Days after ``start`` from which the planted brand switch holds (None: no switch)."""
    switch_share: float = 0.2
    """Share of the customers who switch."""
    switch_subclass_share: float = 0.3
    """Share of the subclasses they switch in."""
    numeric_codes: bool = False
    """Subclass codes as digits (``100012``, like Ta-Feng's) instead of ``S12``: a voice request can name a
    subclass by its code, where its name (``milk 1``) also matches the other ``milk`` subclasses."""

    @property
    def n_subclasses(self) -> int:
        return self.n_departments * self.aisles_per_department * self.subclasses_per_aisle

    @property
    def n_products(self) -> int:
        return self.n_subclasses * self.products_per_subclass


def preferred_product(config: SyntheticConfig, customer: np.ndarray, subclass: np.ndarray) -> np.ndarray:
    """Index (0..products_per_subclass-1) of the product a customer prefers in a subclass."""
    h = (customer.astype(np.uint64) * np.uint64(2654435761) + subclass.astype(np.uint64) * np.uint64(40503)
         + np.uint64(config.seed) * np.uint64(97)) % np.uint64(1_000_003)
    return (h % np.uint64(config.products_per_subclass)).astype(np.int64)


SUBCLASS_CODE_BASE = 100_000
"""With ``numeric_codes``, subclass ``s`` has the code ``SUBCLASS_CODE_BASE + s``."""


def subclass_of(config: SyntheticConfig, code: str) -> int:
    """The subclass index of a ``category_l3`` code."""
    return int(code) - SUBCLASS_CODE_BASE if config.numeric_codes else int(code.lstrip("S"))


def _unit_hash(config: SyntheticConfig, values: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic number in [0, 1) per value (no draw from the generator's stream)."""
    h = (values.astype(np.uint64) * np.uint64(2246822519) + np.uint64(salt) * np.uint64(3266489917)
         + np.uint64(config.seed) * np.uint64(668265263)) % np.uint64(1_000_003)
    return h.astype(np.float64) / 1_000_003


def switches(config: SyntheticConfig, customer: np.ndarray, subclass: np.ndarray) -> np.ndarray:
    """Whether each (customer, subclass) is in the planted brand switch (all False without ``switch_day``)."""
    if config.switch_day is None:
        return np.zeros(np.broadcast(customer, subclass).shape, dtype=bool)
    return ((_unit_hash(config, np.asarray(customer), 1) < config.switch_share)
            & (_unit_hash(config, np.asarray(subclass), 2) < config.switch_subclass_share))


def preferred_product_on(config: SyntheticConfig, customer: np.ndarray, subclass: np.ndarray,
                         day: np.ndarray | int) -> np.ndarray:
    """The preferred slot on ``day`` (days after ``start``): after the switch day, switchers in switched
    subclasses prefer another slot (the catalogue gives it another brand)."""
    before = preferred_product(config, customer, subclass)
    if config.switch_day is None:
        return before
    after = (before + 1 + (subclass.astype(np.int64) % (config.products_per_subclass - 1))) % config.products_per_subclass
    moved = switches(config, customer, subclass) & (np.asarray(day) >= config.switch_day)
    return np.where(moved, after, before)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def product_id(subclass: np.ndarray, slot: np.ndarray) -> pa.Array:
    return _ids("P", subclass * 1000 + slot, 8)


def subclass_and_slot(product_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`product_id`: (subclass, slot) per id."""
    code = np.asarray([int(p[1:]) for p in product_ids], dtype=np.int64)
    return code // 1000, code % 1000


def _catalogue(cfg: SyntheticConfig) -> pa.Table:
    s = np.arange(cfg.n_subclasses)
    slot = np.tile(np.arange(cfg.products_per_subclass), cfg.n_subclasses)
    sub = np.repeat(s, cfg.products_per_subclass)
    aisle = sub // cfg.subclasses_per_aisle
    dept = aisle // cfg.aisles_per_department
    noun = np.array(_NOUNS)[sub % len(_NOUNS)]
    sub_name = np.char.add(np.char.add(noun, " "), (sub // len(_NOUNS) + 1).astype(str))
    brand = np.array(_BRANDS)[(sub * 7 + slot) % len(_BRANDS)]
    size = np.array(_SIZES)[(sub + slot * 3) % len(_SIZES)]
    title = np.char.add(np.char.add(np.char.add(brand, " "), sub_name), np.char.add(" ", size))
    return pa.table({
        "product_id": product_id(sub, slot),
        "title": title, "brand": brand, "size": size,
        "category_l1": np.char.add("D", dept.astype(str)),
        "category_l2": np.char.add("A", aisle.astype(str)),
        "category_l3": (np.char.add("S", sub.astype(str)) if not cfg.numeric_codes
                        else (SUBCLASS_CODE_BASE + sub).astype(str)),
        "category_l1_name": np.char.add("department ", dept.astype(str)),
        "category_l2_name": np.char.add("aisle ", aisle.astype(str)),
        "category_l3_name": sub_name,
    })


def segment_preferences(cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """(segment × subclass preference matrix, segment × routine subclasses), planted by seed."""
    rng = np.random.default_rng(cfg.seed + 1)
    pref = rng.dirichlet(np.full(cfg.n_subclasses, 0.15), size=cfg.n_segments)
    routine = np.stack([rng.choice(cfg.n_subclasses, size=cfg.routine_length, replace=False)
                        for _ in range(cfg.n_segments)])
    return pref, routine


CHUNK = 100_000
"""Customers generated per chunk (chunk i draws from the stream ``(seed, i)``): bounds the
temporaries, so 1M customers need a few GiB, not tens."""


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> tuple[CanonicalTables, pa.Table]:
    """The canonical tables and a ``planted`` table (customer_id, segment, routine_offset)."""
    pref, routine = segment_preferences(cfg)
    parts = [_chunk(cfg, first, min(CHUNK, cfg.n_customers - first), pref, routine)
             for first in range(0, cfg.n_customers, CHUNK)]
    tables = CanonicalTables(
        customers=pa.concat_tables([p[0] for p in parts]),
        products=_catalogue(cfg),
        orders=pa.concat_tables([p[1] for p in parts]),
        order_lines=pa.concat_tables([p[2] for p in parts]),
    )
    return tables, pa.concat_tables([p[3] for p in parts])


def _chunk(cfg: SyntheticConfig, first_customer: int, n: int, pref: np.ndarray,
           routine: np.ndarray) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    rng = np.random.default_rng([cfg.seed, first_customer // CHUNK])
    cust = np.arange(n)  # local index; global = first_customer + cust
    segment = rng.integers(0, cfg.n_segments, n)
    age_idx = (segment * (len(AGE_GROUPS) // cfg.n_segments)) % len(AGE_GROUPS)
    noisy = rng.random(n) < cfg.label_noise
    age_idx = np.where(noisy, rng.integers(0, len(AGE_GROUPS), n), age_idx)
    offset = rng.integers(0, cfg.routine_length, n)
    cust_ids = _ids("C", first_customer + cust, 7)

    # orders: per customer 1 + Poisson, dated by exponential gaps
    n_orders = 1 + rng.poisson(cfg.mean_orders - 1, n)
    order_cust = np.repeat(cust, n_orders)
    first = np.repeat(np.cumsum(n_orders) - n_orders, n_orders)
    t_in_cust = np.arange(order_cust.size) - first
    gaps = np.maximum(1, np.round(rng.exponential(cfg.mean_days_between, order_cust.size))).astype(np.int64)
    gaps[t_in_cust == 0] = rng.integers(0, 14, (t_in_cust == 0).sum())
    cum = np.cumsum(gaps)
    day = cum - cum[first] + gaps[first]  # days since the start, per customer
    order_day = day.copy()
    hour = rng.integers(8, 21, order_cust.size)
    ts = (np.datetime64(cfg.start, "us") + day.astype("timedelta64[D]") + hour.astype("timedelta64[h]"))
    order_ids = pc.binary_join_element_wise(cust_ids.take(order_cust), pa.array(t_in_cust).cast(pa.string()), "-")
    del gaps, cum, day, hour, first

    # lines: basket of 1 + Poisson subclasses, each routine or preference-drawn, product loyal or random
    basket = 1 + rng.poisson(cfg.mean_basket - 1, order_cust.size)
    line_order = np.repeat(np.arange(order_cust.size), basket)
    line_cust = order_cust[line_order]
    line_seg = segment[line_cust]
    pos_in_basket = np.arange(line_order.size) - np.repeat(np.cumsum(basket) - basket, basket)
    routine_pos = (offset[line_cust] + t_in_cust[line_order] + pos_in_basket) % cfg.routine_length
    del pos_in_basket
    from_routine = rng.random(line_order.size) < cfg.routine_share
    cdf = np.cumsum(pref, axis=1)
    u = rng.random(line_order.size)
    drawn = np.empty(line_order.size, np.int64)
    for seg in range(cfg.n_segments):
        mask = line_seg == seg
        drawn[mask] = np.minimum(np.searchsorted(cdf[seg], u[mask]), cfg.n_subclasses - 1)
    sub = np.where(from_routine, routine[line_seg, routine_pos], drawn)
    del u, drawn, routine_pos, from_routine
    loyal = rng.random(line_order.size) < cfg.loyalty
    slot = np.where(loyal, preferred_product_on(cfg, first_customer + line_cust, sub, order_day[line_order]),
                    rng.integers(0, cfg.products_per_subclass, sub.size))
    # one line per (order, product): duplicates within a basket add up
    key = line_order * cfg.n_products + sub * cfg.products_per_subclass + slot
    del line_order, line_cust, line_seg, sub, slot, loyal, order_day
    uniq, qty = np.unique(key, return_counts=True)
    u_order, rest = np.divmod(uniq, cfg.n_products)
    u_sub, u_slot = np.divmod(rest, cfg.products_per_subclass)
    base_price = 1.0 + (u_sub % 17) * 0.75 + u_slot * 0.4

    customers = pa.table({"customer_id": cust_ids, "age_group": pa.array(AGE_GROUPS).take(age_idx),
                          "postal_area": _ids("Z", segment % 3, 1)})
    orders = pa.table({"order_id": order_ids, "customer_id": cust_ids.take(order_cust),
                       "timestamp": pa.array(ts, pa.timestamp("us"))})
    lines = pa.table({"order_id": order_ids.take(u_order), "product_id": product_id(u_sub, u_slot),
                      "quantity": qty.astype(np.float64), "price": np.round(base_price, 2)})
    planted = pa.table({"customer_id": cust_ids, "segment": segment, "routine_offset": offset})
    return customers, orders, lines, planted


def describe_config(cfg: SyntheticConfig) -> dict[str, int | float | str]:
    return {f"synthetic_{k}": (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(cfg).items()
            if v is not None}  # no switch_day: no planted switch to describe
