"""Repeats of #17's two throughput goals, per ``serving.cpu_affinity`` setting, on serving.py's world.

2 worker processes; for each setting named: p99 of 5 runs of 1500 evenly spaced requests at 800 and at
1000 req/s (goal at 800: <= 10 ms), then 3 runs of Debian's ``hey -c 10 -q 30`` (goal: p99 <= 15 ms).
Prints the runs; docs/benchmarks.md quotes them. Never asserts timings.

    python benchmarks/serving_goals.py [auto] [off]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as bench  # noqa: E402 - the benchmark's world, client and hey wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modes", nargs="*", default=["auto", "off"], choices=["auto", "off"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vc-bench-goals-") as tmp:
        root = Path(tmp)
        world = bench.prepare(root, args.customers, None)
        gc.collect()
        gc.freeze()
        customers = world["customers"]
        for mode in args.modes:
            env = {**bench.store_env(world["sqlite"]), "VOICECART_SERVING__CPU_AFFINITY": mode}
            srv = bench.start(world["bundle"], root / f"{mode}.log", env=env, workers=2)
            try:
                asyncio.run(bench.drive(srv.url, 100, 300, customers, seed=0))  # warm-up
                for rate in (800, 1000):
                    p99 = [asyncio.run(bench.drive(srv.url, rate, 1500, customers, seed=10 + i))["p99"]
                           for i in range(args.runs)]
                    print(f"cpu_affinity {mode}: {rate} req/s p99 ms", " ".join(f"{x:.2f}" for x in p99), flush=True)
                bursts = [bench.hey(srv.url, customers[5], 3000, 10, 30, root)["p99"] for _ in range(3)]
                print(f"cpu_affinity {mode}: hey -c 10 -q 30 p99 ms", " ".join(f"{x:.1f}" for x in bursts), flush=True)
            finally:
                srv.stop()


if __name__ == "__main__":
    main()
