"""What the replay measured: weekly HR@1 per arm, the paired difference of two arms on the same requests,
the plot, and — with a planted brand switch — how soon the served answers follow the new brand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.data.synthetic import preferred_product, preferred_product_on, subclass_and_slot, subclass_of, switches


def load_answers(out: Path) -> pa.Table:
    return pq.read_table(Path(out) / "answers.parquet")


def weekly_hr1(answers: pa.Table) -> dict[str, dict[str, tuple[float, int]]]:
    """{arm: {cycle: (HR@1, requests)}}: the share of requests whose answer was a product bought."""
    out: dict[str, dict[str, tuple[float, int]]] = {}
    rows = answers.group_by(["arm", "cycle"]).aggregate([("hit", "mean"), ("hit", "count")]).to_pylist()
    for r in sorted(rows, key=lambda r: (r["arm"], r["cycle"])):
        out.setdefault(r["arm"], {})[r["cycle"]] = (float(r["hit_mean"]), int(r["hit_count"]))
    return out


@dataclass(frozen=True)
class Paired:
    """``a - b`` of HR@1 on the requests both arms answered (bootstrap 95 % interval over requests)."""

    a: str
    b: str
    cycles: tuple[str, ...]
    n: int
    difference: float
    low: float
    high: float

    def line(self) -> str:
        verdict = ("above zero" if self.low > 0 else "below zero" if self.high < 0 else "includes zero")
        return (f"HR@1 {self.a} − {self.b} on the same {self.n:,} requests (cycles {', '.join(self.cycles)}): "
                f"{self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}] — the interval {verdict}")


def paired(answers: pa.Table, a: str, b: str, cycles: list[str] | None = None, n_boot: int = 1000,
           seed: int = 0) -> Paired | None:
    """The paired difference of arms ``a`` and ``b`` (None when either did not run)."""
    from voicecart.evaluation.metrics import bootstrap

    hits = {}
    for arm in (a, b):
        rows = answers.filter(pa.compute.equal(answers.column("arm"), arm))
        if cycles is not None:
            rows = rows.filter(pa.compute.is_in(rows.column("cycle"), pa.array(cycles)))
        hits[arm] = dict(zip(rows.column("request_id").to_pylist(), rows.column("hit").to_pylist()))
    common = sorted(set(hits[a]) & set(hits[b]))
    if not common:
        return None
    diff = np.array([float(hits[a][r]) - float(hits[b][r]) for r in common])
    ci = bootstrap(diff, n_boot=n_boot, seed=seed)
    used = cycles if cycles is not None else sorted(set(answers.column("cycle").to_pylist()))
    return Paired(a, b, tuple(used), len(common), float(diff.mean()), float(ci.low), float(ci.high))


def plot(weekly: dict[str, dict[str, tuple[float, int]]], path: Path, title: str) -> Path:
    """Weekly HR@1 per arm as a PNG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, cycles in weekly.items():
        xs = list(cycles)
        ax.plot(xs, [cycles[c][0] for c in xs], marker="o", label=arm)
    ax.set_xlabel("week starting")
    ax.set_ylabel("HR@1 of the served answers")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def weekly_table(weekly: dict[str, dict[str, tuple[float, int]]]) -> str:
    arms = list(weekly)
    cycles = sorted({c for v in weekly.values() for c in v})
    head = "| week from | " + " | ".join(arms) + " |\n|---|" + "---|" * len(arms) + "\n"
    body = "".join(f"| {c} | " + " | ".join(f"{weekly[a][c][0]:.4f} (n={weekly[a][c][1]:,})" if c in weekly[a] else "–"
                                          for a in arms) + " |\n" for c in cycles)
    return head + body


# -- the planted brand switch (synthetic data) ---------------------------------------------------------
def first_new_purchase(dataset: Path, config, switch_day: int) -> dict[tuple[int, int], int]:  # noqa: ANN001
    """{(customer, subclass): the first day (days after the data's start) on or after the switch on which the
    customer bought its new preferred product there}: from then on the switch is in the data, before it no
    model can see it."""
    orders = pq.read_table(Path(dataset) / "orders.parquet", columns=["order_id", "customer_id", "timestamp"])
    lines = pq.read_table(Path(dataset) / "order_lines.parquet", columns=["order_id", "product_id"])
    joined = lines.join(orders, "order_id")
    start = np.datetime64(config.start, "us")
    day = ((joined.column("timestamp").to_numpy().astype("datetime64[us]") - start) // np.timedelta64(1, "D"))
    sub, slot = subclass_and_slot(joined.column("product_id").to_pylist())
    cust = np.asarray([int(c.lstrip("C")) for c in joined.column("customer_id").to_pylist()], dtype=np.int64)
    after = day >= switch_day
    cust, sub, slot, day = cust[after], sub[after], slot[after], day[after]
    new = preferred_product_on(config, cust, sub, day)
    first: dict[tuple[int, int], int] = {}
    hit = (slot == new) & switches(config, cust, sub)
    for c, s_, d in zip(cust[hit].tolist(), sub[hit].tolist(), day[hit].tolist()):
        first[(c, s_)] = min(d, first.get((c, s_), d))
    return first


def follow_days(answers: pa.Table, config, switch_day: int, start_day: str,  # noqa: ANN001 - SyntheticConfig
                threshold: float = 0.5, first_new: dict[tuple[int, int], int] | None = None) -> dict[str, dict]:
    """Per arm: for the requests of switchers in switched categories on or after the switch, the daily share
    answered with the new preferred product; ``days`` is the first day (counted from the switch) from which
    that share stays at or above ``threshold`` to the end of the replay (None: never).

    With ``first_new`` (:func:`first_new_purchase`): ``revealed`` counts the requests that come after the
    customer's first purchase of the new brand there (the switch is in the data the server may hold), and
    ``revealed_new_share`` is the share of those answered with the new brand; before the reveal only chance
    names the new brand."""
    from datetime import date, timedelta

    origin = config.start.date()
    switch_date = origin + timedelta(days=switch_day)
    result = {}
    for arm in sorted(set(answers.column("arm").to_pylist())):
        rows = answers.filter(pa.compute.equal(answers.column("arm"), arm)).to_pylist()
        per_day: dict[str, list[int]] = {}
        revealed = revealed_new = 0
        for r in rows:
            customer = np.array([int(r["customer_id"].lstrip("C"))])
            sub = np.array([subclass_of(config, r["subclass"])])
            day = date.fromisoformat(r["day"])
            if day < switch_date or not switches(config, customer, sub)[0]:
                continue
            new = int(preferred_product_on(config, customer, sub, (day - origin).days)[0])
            old = int(preferred_product(config, customer, sub)[0])
            slot = int(subclass_and_slot([r["product_id"]])[1][0]) if r["product_id"] else -1
            counts = per_day.setdefault(r["day"], [0, 0, 0])
            counts[0] += 1
            counts[1] += slot == new
            counts[2] += slot == old
            seen = first_new is not None and first_new.get((int(customer[0]), int(sub[0])), 10 ** 9) < (day - origin).days
            revealed += seen
            revealed_new += seen and slot == new
        days = sorted(per_day)
        share = {d: per_day[d][1] / per_day[d][0] for d in days}
        follows = None
        for i, d in enumerate(days):
            if all(share[x] >= threshold for x in days[i:]):
                follows = (date.fromisoformat(d) - switch_date).days
                break
        result[arm] = {"days": follows, "requests": sum(v[0] for v in per_day.values()),
                       "new_share": {d: round(share[d], 4) for d in days},
                       "old_share": {d: round(per_day[d][2] / per_day[d][0], 4) for d in days}}
        if first_new is not None:
            result[arm] |= {"revealed": revealed, "revealed_new_share": round(revealed_new / revealed, 4) if revealed
                            else None}
    return result


def summarize(out: Path, result: dict, planted=None) -> dict:  # noqa: ANN001 - planted.PlantedWorld | None
    """The replay's report: markdown (tables, the paired line, the loop's evidence) and its numbers."""
    answers = load_answers(out)
    weekly = weekly_hr1(answers)
    cycles = sorted({c for v in weekly.values() for c in v})
    title = "synthetic, planted brand switch" if planted else "Ta-Feng"
    png = plot(weekly, Path(out) / "loop.png", f"weekly HR@1 of the served answers ({title})")
    pairs = [p for p in (paired(answers, "feedback", "no_feedback"),
                         paired(answers, "feedback", "no_feedback", cycles[1:]) if len(cycles) > 1 else None,
                         paired(answers, "feedback", "frozen"), paired(answers, "no_feedback", "frozen"))
             if p is not None]
    lines = [weekly_table(weekly), ""]
    lines += [f"- {p.line()}" for p in pairs]
    loop = result["cycles"]
    lines += ["", "| arm | week from | served as of | champion | canary → outcome | retrain: feedback events → lists | "
                  "gate | events sent / acknowledged / in offline store |", "|---|---|---|---|---|---|---|---|"]
    for c in loop:
        r = c.get("retrain") or {}
        canary = (f"{c['canary']} → {c['canary_outcome']['verdict']}" if c.get("canary_outcome") else "–")
        retrain = f"{r.get('feedback_events', 0):,} → {r.get('feedback_lists', 0):,}" if r else "–"
        gate = f"{r.get('version')} {r.get('state')}" if r else "–"
        lines.append(f"| {c['arm']} | {c['day']} | {(c.get('served_as_of') or '')[:16]} | {c['champion']} | {canary} | "
                     f"{retrain} | {gate} | {c['feedback_sent']:,} / {c['feedback_acknowledged']:,} / "
                     f"{c['offline_events']:,} |")
    numbers = {"weekly_hr1": weekly, "paired": [p.__dict__ for p in pairs], "plot": str(png)}
    retrains = [c["retrain"] for c in loop if c.get("retrain") and c["day"] != cycles[0]]
    out_as_canary = sum(r["state"] != "refused" for r in retrains)
    numbers["retrains"], numbers["retrains_to_canary"] = len(retrains), out_as_canary
    main = pairs[0] if pairs and (pairs[0].a, pairs[0].b) == ("feedback", "no_feedback") else None
    if main is not None:
        verdict = "better" if main.low > 0 else "worse" if main.high < 0 else "no different (the interval holds zero)"
        lines.insert(0, f"**With feedback vs without, paired on the same requests: {verdict}** ({main.difference:+.4f} "
                        f"[{main.low:+.4f}, {main.high:+.4f}]); {out_as_canary} of {len(retrains)} retrains went out "
                        "as a canary.\n")
    if planted is not None:
        first_new = first_new_purchase(planted.dataset, planted.config, planted.switch_day)
        follow = follow_days(answers, planted.config, planted.switch_day, result["config"]["start"],
                             first_new=first_new)
        numbers["follow"] = follow
        lines += ["", f"Planted switch on day {planted.switch_day} ({planted.config.start + _days(planted.switch_day):%Y-%m-%d}): "
                      f"{planted.config.switch_share:.0%} of the customers prefer another brand in "
                      f"{planted.config.switch_subclass_share:.0%} of the categories. *Revealed*: the switched "
                      "requests that come after the customer's first purchase of the new brand in that category "
                      "(before it nothing any model can read shows the switch: only chance names the new brand "
                      "there).", "",
                  "| arm | days until the answers follow the new brand | switched requests | new-brand share, first → "
                  "last day | revealed requests | new-brand share of the revealed |",
                  "|---|---|---|---|---|---|"]
        cycle_days = int(result["config"]["cycle_days"])
        for arm, f in follow.items():
            numbers.setdefault("followed_within_a_cycle", {})[arm] = f["days"] is not None and f["days"] <= cycle_days
            shares = list(f["new_share"].values())
            span = f"{shares[0]:.2f} → {shares[-1]:.2f}" if shares else "–"
            share = f.get("revealed_new_share")
            lines.append(f"| {arm} | {f['days'] if f['days'] is not None else 'not within the replay'} | "
                         f"{f['requests']:,} | {span} | {f.get('revealed', 0):,} "
                         f"({f.get('revealed', 0) / max(f['requests'], 1):.0%}) | "
                         f"{'–' if share is None else f'{share:.2f}'} |")
    lines += ["", *_follow_section(answers, result, planted, numbers)]
    return {"markdown": "\n".join(lines) + "\n", "numbers": numbers}


def _follow_section(answers: pa.Table, result: dict, planted, numbers: dict) -> list[str]:  # noqa: ANN001
    """The report's "follow or stay" table: on the replayed requests, what the purchases reward after a
    deviation and how often each arm's served answer followed it."""
    dataset = planted.dataset if planted is not None else result["config"].get("dataset")
    if not dataset:
        return []
    since = (f"{planted.config.start + _days(planted.switch_day):%Y-%m-%d}" if planted is not None
             else str(result["config"]["start"])[:10])
    arms = sorted(set(answers.column("arm").to_pylist()))
    per_arm = {arm: follow_or_stay(Path(dataset), since, answers, arm=arm) for arm in arms}
    numbers["follow_or_stay"] = {arm: [r.__dict__ for r in rows] for arm, rows in per_arm.items()}
    return [f"Follow or stay, on the requests answered from {since} on (history: the purchases before the request's "
            "week, what the served cut held): when the customer's last purchase in the category was not their "
            "most-bought product there, which of the two they bought, and how often each arm served the last one.", "",
            follow_or_stay_table(per_arm[arms[0]] if arms else [], per_arm).rstrip("\n")]


def _days(n: int):  # noqa: ANN202
    from datetime import timedelta

    return timedelta(days=n)


# -- what the data rewards after a deviation ---------------------------------------------------------------
@dataclass(frozen=True)
class FollowOrStay:
    """Requests whose customer's last purchase in the category was not their most-bought product there, for
    one count of purchases of that last product: how often the purchase was the most-bought product (the
    answer that stays) and how often the last one (the answer that follows); with served answers, how often
    the served answer was each."""

    last_bought: str
    """``"1"``, ``"2"`` or ``"3+"``: purchases of the last product before the request (``"same"``: the last
    product is the most-bought one)."""
    requests: int
    most_bought_hit: float
    last_hit: float
    answered_most_bought: float | None = None
    answered_last: float | None = None


_FOLLOW_LABEL = {"same": "is the most-bought", "1": "another product, bought once", "2": "another, bought twice",
                 "3+": "another, bought 3+ times"}


_LEVELS = ("category_l1", "category_l2", "category_l3")


def follow_or_stay(dataset: Path, since: str, answers: pa.Table | None = None, level: str = "category_l3",
                   arm: str | None = None) -> list[FollowOrStay]:
    """Whether following a customer's latest deviation pays, read from the purchases alone (any dataset), and
    with ``answers`` (the replay's, one arm) whether the served answers followed.

    A request is one (customer, category, day) from ``since`` (ISO date) on on which the customer bought in the
    category (the replay's requests, or with ``answers`` exactly those answered with a product), with 2+
    purchases there in its history (a product on a day is one). The history is every earlier day; with
    ``answers`` it is the days before the request's cycle, what the served cut held (the server also folds the
    week's kept and swapped answers in, never a removed one, so it knew at least this much and at most the
    earlier days'). ``most-bought`` is the product bought on most of those days (ties: the later last purchase,
    then the product id), ``last`` a product of the latest of them (ties: the more bought, then the product id),
    so that every run and every arm reads the same pair. A ranker fit to maximise HR@1 should follow only in the
    rows where ``last_hit`` exceeds ``most_bought_hit``."""
    from voicecart.data.store import connect

    if level not in _LEVELS:
        raise ValueError(f"level must be one of {', '.join(_LEVELS)}, got {level!r}")
    con = connect(Path(dataset))
    try:
        con.execute(f"""
            CREATE TEMP TABLE b AS SELECT DISTINCT o.customer_id c, p.{level} s, CAST(o.timestamp AS DATE) t,
                l.product_id p
            FROM order_lines l JOIN orders o USING (order_id) JOIN products p USING (product_id)""")
        con.execute("""CREATE TEMP TABLE q AS SELECT c, s, t, t h, list(p) bought FROM b WHERE t >= CAST(? AS DATE)
                       GROUP BY ALL""", [since])
        if answers is not None:
            served = answers if arm is None else answers.filter(pa.compute.equal(answers.column("arm"), arm))
            con.register("served", served.select(["customer_id", "subclass", "day", "cycle", "product_id"]))
            con.execute("""CREATE TEMP TABLE a AS SELECT customer_id c, CAST(subclass AS VARCHAR) s,
                           CAST(day AS DATE) t, min(CAST(cycle AS DATE)) h, any_value(product_id) answer
                           FROM served WHERE product_id IS NOT NULL GROUP BY ALL""")
            con.execute("CREATE OR REPLACE TEMP TABLE q AS SELECT q.c, q.s, q.t, a.h, q.bought, a.answer FROM q "
                        "JOIN a USING (c, s, t)")
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE q AS SELECT *, CAST(NULL AS VARCHAR) answer FROM q")
        rows = con.execute("""
            WITH h AS (SELECT q.c, q.s, q.t, b.p, count(*) n, max(b.t) last
                       FROM q JOIN b ON b.c = q.c AND b.s = q.s AND b.t < q.h GROUP BY ALL),
            pick AS (SELECT c, s, t, first(p ORDER BY n DESC, last DESC, p) most,
                            first(p ORDER BY last DESC, n DESC, p) lastp, first(n ORDER BY last DESC, n DESC, p) last_n,
                            sum(n) bought_before
                     FROM h GROUP BY ALL)
            SELECT CASE WHEN most = lastp THEN 'same' WHEN last_n >= 3 THEN '3+' ELSE CAST(last_n AS VARCHAR) END k,
                   count(*), avg(list_contains(bought, most)::INT), avg(list_contains(bought, lastp)::INT),
                   avg((answer = most)::INT), avg((answer = lastp)::INT)
            FROM pick JOIN q USING (c, s, t) WHERE bought_before >= 2 GROUP BY ALL ORDER BY k""").fetchall()
    finally:
        con.close()
    order = {"same": 0, "1": 1, "2": 2, "3+": 3}
    return sorted((FollowOrStay(k, int(n), float(m), float(la), None if am is None else float(am),
                                None if al is None else float(al)) for k, n, m, la, am, al in rows),
                  key=lambda r: order[r.last_bought])


def follow_or_stay_table(rows: list[FollowOrStay], served: dict[str, list[FollowOrStay]] | None = None) -> str:
    """The markdown of :func:`follow_or_stay`'s rows; with ``served`` ({arm: that arm's rows}) a column per arm
    of how often it served the last product."""
    arms = list(served or {})
    head = ("| last purchase in the category | requests | bought the most-bought | bought the last |"
            + "".join(f" {a}: served the last |" for a in arms) + "\n|---|---:|---:|---:|" + "---:|" * len(arms) + "\n")
    body = ""
    for r in rows:
        shares = [next((x.answered_last for x in served[a] if x.last_bought == r.last_bought), None) for a in arms]
        body += (f"| {_FOLLOW_LABEL[r.last_bought]} | {r.requests:,} | {r.most_bought_hit:.3f} | {r.last_hit:.3f} |"
                 + "".join(" – |" if v is None else f" {v:.3f} |" for v in shares) + "\n")
    return head + body
