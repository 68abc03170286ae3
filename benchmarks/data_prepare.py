"""Preparing full Ta-Feng and a 1M-customer synthetic set: wall time and peak RSS.

Each measurement runs in a fresh child process so its peak RSS is its own. The baseline, run the
same way, is only *reading* the Ta-Feng CSV with pandas (no validation, no canonical tables, no
parquet): the ratio says what the whole preparation costs relative to a plain read.
Writes the `data_prepare` section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
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
    else:
        from voicecart.data.prepare import prepare
        from voicecart.data.synthetic import SyntheticConfig
        if kind == "tafeng":
            m = prepare("tafeng", out, path=Path(src))
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
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "pandas read_csv of Ta-Feng (baseline)": run("pandas-read", str(TAFENG), Path(tmp) / "x"),
            "prepare Ta-Feng (817,741 lines)": run("tafeng", str(TAFENG), Path(tmp) / "tafeng"),
            "prepare synthetic, 1M customers": run("synthetic", "1000000", Path(tmp) / "synth"),
        }
    base = results["pandas read_csv of Ta-Feng (baseline)"]["wall_s"]
    lines = ["## Data preparation (`benchmarks/data_prepare.py`)", "",
             "| job | order lines | wall (s) | × baseline | peak RSS (MiB) |", "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rows']:,} | {r['wall_s']:.1f} | {r['wall_s'] / base:.2f} | {r['peak_rss_mib']:,.0f} |")
    lines += ["", "Aim (issue 2): full Ta-Feng under 20 s and 2 GiB on 2 cores."]
    print("\n".join(lines))
    write_section("data_prepare", "\n".join(lines))


if __name__ == "__main__":
    main()
