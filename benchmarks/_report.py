"""Shared by every benchmark: write one named section of docs/benchmarks.md, leaving the others alone."""

from __future__ import annotations

import platform
import re
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = ("# Benchmarks\n\nMeasured numbers, written by the scripts in `benchmarks/` (`make bench`). Each section "
          "names the machine it ran on; ratios compare against a baseline run in the same process.\n")


def machine() -> str:
    return (f"{platform.machine()}, {psutil.cpu_count(logical=True)} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")


def write_section(name: str, markdown: str, path: Path = REPORT) -> Path:
    """Replace (or append) the section ``name`` of the report, stamped with date and machine."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    stamp = f"_Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}._\n\n"
    block = f"{start}\n{stamp}{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
