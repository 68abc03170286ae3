"""Signals for the lines without category history (#16, point 4), against popularity in the same process.

The evaluation's cold lines of Complete Journey as served (docs/evaluation.md): every purchase of the test
days whose product type has 2+ products sold before the test, by a household that never bought in that type
before (nor earlier in the test days). Each signal answers with its top product of the type; HR@1 and its
ratio to the chain's popularity (orders), computed here on the same lines. Prints a markdown table.

    python benchmarks/cold_lines.py [--data data/completejourney] [--test-from 2017-12-01 --test-end 2017-12-15]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from rich.progress import track

from voicecart.data.store import connect


def cold_lines(con, test_from: str, test_end: str) -> None:  # noqa: ANN001 - voicecart.data.store.connect's
    con.execute("""CREATE TABLE lines AS SELECT o.customer_id c, o.timestamp t, CAST(o.timestamp AS DATE) d,
        l.product_id p, pr.category_l3 cat, o.order_id
        FROM order_lines l JOIN orders o USING (order_id) JOIN products pr USING (product_id)""")
    con.execute("CREATE TABLE train AS SELECT * FROM lines WHERE d < CAST(? AS DATE)", [test_from])
    con.execute("CREATE TABLE test AS SELECT * FROM lines WHERE d >= CAST(? AS DATE) AND d < CAST(? AS DATE)",
                [test_from, test_end])
    con.execute("""CREATE TABLE pop AS SELECT cat, p, count(DISTINCT order_id) n, count(DISTINCT c) buyers
        FROM train GROUP BY ALL""")
    con.execute("CREATE TABLE cats AS SELECT cat FROM pop GROUP BY cat HAVING count(*) >= 2")
    con.execute("""CREATE TABLE q AS SELECT t.c, t.cat, t.p FROM test t JOIN cats USING (cat)
        WHERE NOT EXISTS (SELECT 1 FROM train r WHERE r.c = t.c AND r.cat = t.cat)
          AND NOT EXISTS (SELECT 1 FROM test u WHERE u.c = t.c AND u.cat = t.cat AND u.d < t.d)""")
    # trial: the products of each household's first order in the type (all of it, and from April on)
    con.execute("""CREATE TABLE firsts AS SELECT r.cat, r.p, r.d FROM train r
        JOIN (SELECT c, cat, min(t) t0 FROM train GROUP BY ALL) f ON f.c = r.c AND f.cat = r.cat AND r.t = f.t0""")


def product_signals(con) -> dict[str, float]:  # noqa: ANN001
    """HR@1 of each type-level signal's top product on the cold lines (ties: the more ordered product, then the id)."""
    out = {}
    for name, score in (("popularity (orders)", "pop.n"), ("distinct buyers", "pop.buyers + pop.n * 1e-6"),
                        ("trial popularity", "coalesce(tr.n, 0) + pop.n * 1e-6"),
                        ("trial popularity from April", "coalesce(tl.n, 0) + pop.n * 1e-6")):
        out[name] = con.execute(f"""
            WITH tr AS (SELECT cat, p, count(*) n FROM firsts GROUP BY ALL),
                 tl AS (SELECT cat, p, count(*) n FROM firsts WHERE d >= DATE '2017-04-01' GROUP BY ALL),
                 top AS (SELECT pop.cat, first(pop.p ORDER BY {score} DESC, pop.p) top FROM pop LEFT JOIN tr USING (cat, p)
                         LEFT JOIN tl USING (cat, p) GROUP BY pop.cat)
            SELECT avg((top.top = q.p)::INT) FROM q JOIN top USING (cat)""").fetchone()[0]
    return out


def tier_signals(con) -> dict[str, float]:  # noqa: ANN001
    """HR@1 of the type's most ordered product among the households of the same tier (tertiles of the
    household's mean price relative to each type, or of its private-label share), else the chain's."""
    con.execute("CREATE TABLE price AS SELECT product_id p, median(price) pr FROM order_lines GROUP BY ALL")
    con.execute("""CREATE TABLE relp AS SELECT pop.cat, pop.p, ln(pr.pr) - avg(ln(pr.pr)) OVER (PARTITION BY pop.cat) rel
        FROM pop JOIN price pr USING (p) WHERE pr.pr > 0""")
    con.execute("""CREATE TABLE tiers AS SELECT c, ntile(3) OVER (ORDER BY mrel) price_tier,
            ntile(3) OVER (ORDER BY priv) private_tier
        FROM (SELECT t.c, avg(r.rel) mrel, avg((pb.brand = 'Private')::INT) priv FROM train t
              JOIN relp r ON r.p = t.p AND r.cat = t.cat
              JOIN products pb ON pb.product_id = t.p GROUP BY ALL)""")
    out = {}
    for name, col in (("popularity within the household's price tier", "price_tier"),
                      ("popularity within the household's private-label tier", "private_tier")):
        out[name] = con.execute(f"""
            WITH tp AS (SELECT h.{col} g, t.cat, t.p, count(DISTINCT t.order_id) n FROM train t JOIN tiers h USING (c)
                        GROUP BY ALL),
                 top AS (SELECT tp.g, tp.cat, first(tp.p ORDER BY tp.n DESC, pop.n DESC, tp.p) top FROM tp JOIN pop USING (cat, p)
                         GROUP BY ALL),
                 chain AS (SELECT cat, first(p ORDER BY n DESC, p) top FROM pop GROUP BY cat)
            SELECT avg((coalesce(top.top, chain.top) = q.p)::INT) FROM q JOIN chain USING (cat) LEFT JOIN tiers h USING (c)
            LEFT JOIN top ON top.g = h.{col} AND top.cat = q.cat""").fetchone()[0]
    return out


def neighbour_signals(con, ks: tuple[int, ...] = (20, 100, 400)) -> dict[str, float]:  # noqa: ANN001
    """HR@1 of the candidate's buyers among the household's K most similar households (cosine over
    idf-weighted log purchase counts) as a share of the type's, plus half the candidate's popularity share."""
    rows = con.execute("SELECT c, p, count(DISTINCT order_id) n FROM train GROUP BY ALL").fetchall()
    customers = sorted({r[0] for r in rows})
    products = sorted({r[1] for r in rows})
    ci, pi = {c: i for i, c in enumerate(customers)}, {p: i for i, p in enumerate(products)}
    m = sp.csr_matrix((np.log1p([r[2] for r in rows]), ([ci[r[0]] for r in rows], [pi[r[1]] for r in rows])),
                      shape=(len(customers), len(products)))
    idf = np.log(len(customers) / (1 + np.asarray((m > 0).sum(0)).ravel()))
    x = m.multiply(idf[None, :]).tocsr()
    x = sp.diags(1 / (np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel()) + 1e-9)) @ x
    sim = (x @ x.T).toarray()
    np.fill_diagonal(sim, 0)
    buyers = (m > 0).astype(np.float32).tocsc()
    cand: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for cat, p, n in con.execute("SELECT cat, p, n FROM pop JOIN cats USING (cat) ORDER BY cat, n DESC, p").fetchall():
        cand.setdefault(cat, ([], []))
        cand[cat][0].append(pi[p])
        cand[cat][1].append(n)
    cand = {k: (np.asarray(a), np.asarray(b, float)) for k, (a, b) in cand.items()}
    queries = con.execute("SELECT c, cat, p FROM q ORDER BY c, cat, p").fetchall()
    hits = {k: 0 for k in ks}
    for c, cat, truth in track(queries, description="neighbours"):
        idx, pop = cand[cat]
        for k in ks:
            if c in ci:
                row = sim[ci[c]]
                nb = np.argpartition(-row, k)[:k]
                knn = np.asarray(buyers[:, idx][nb].T @ row[nb]).ravel()
                score = knn / (knn.sum() + 1e-9) + pop / pop.sum() * 0.5 + 1e-9 * pop
            else:
                score = pop
            hits[k] += products[idx[np.argmax(score)]] == truth
    return {f"household neighbours, K = {k}": hits[k] / len(queries) for k in ks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/completejourney"))
    parser.add_argument("--test-from", default="2017-12-01")
    parser.add_argument("--test-end", default="2017-12-15")
    args = parser.parse_args()
    con = connect(args.data)
    cold_lines(con, args.test_from, args.test_end)
    n = con.execute("SELECT count(*) FROM q").fetchone()[0]
    results = product_signals(con) | tier_signals(con) | neighbour_signals(con)
    base = results["popularity (orders)"]
    print(f"{n:,} lines without category history, {args.test_from} .. {args.test_end} ({args.data})\n")
    print("| signal | HR@1 | ratio to popularity |\n|---|---:|---:|")
    for name, hr in results.items():
        print(f"| {name} | {hr:.4f} | {hr / base:.3f} |")


if __name__ == "__main__":
    main()
