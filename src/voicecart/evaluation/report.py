"""Render resolution reports: a markdown table and a bar chart (HR@1 with 95% CIs)."""

from __future__ import annotations

from pathlib import Path

GROUPS = (("all", "all lines"), ("with_category_history", "with category history"),
          ("without_category_history", "without category history"))


def markdown_table(report: dict) -> str:
    """One row per method: HR@1 [CI], HR@5, MRR, NDCG@5, HR@1 by category-history group."""
    rows = ["| method | HR@1 [95% CI] | HR@5 | MRR | NDCG@5 | HR@1 with cat. history | HR@1 without |",
            "|---|---|---|---|---|---|---|"]
    for name, m in report["methods"].items():
        a = m["all"]
        rows.append(f"| {name} | {a['hr@1']['value']:.4f} [{a['hr@1']['low']:.4f}, {a['hr@1']['high']:.4f}] | "
                    f"{a['hr@5']['value']:.4f} | {a['mrr']['value']:.4f} | {a['ndcg@5']['value']:.4f} | "
                    f"{m['with_category_history']['hr@1']['value']:.4f} (n={m['with_category_history']['n']:,}) | "
                    f"{m['without_category_history']['hr@1']['value']:.4f} (n={m['without_category_history']['n']:,}) |")
    return "\n".join(rows)


def bar_chart(report: dict, path: str | Path, title: str) -> Path:
    """Grouped bars of HR@1 per method and group, with the bootstrap CI as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(report["methods"])
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    width = 0.8 / len(GROUPS)
    x = np.arange(len(methods))
    for g, (key, label) in enumerate(GROUPS):
        vals = [report["methods"][m][key]["hr@1"] for m in methods]
        v = np.array([d["value"] for d in vals])
        err = np.array([[d["value"] - d["low"] for d in vals], [d["high"] - d["value"] for d in vals]])
        ax.bar(x + (g - 1) * width, v, width, yerr=err, capsize=2, label=label)
    ax.set_xticks(x, [m.replace("_", " ") for m in methods], rotation=15)
    ax.set_ylabel("HR@1 (95% bootstrap CI)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
