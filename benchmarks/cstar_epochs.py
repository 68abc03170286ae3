"""C-STAR on Complete Journey against the length of pre-training: the paired gains over the same encoder
untrained, and over bag of categories, read from `voicecart evaluate cstar` reports that differ only in
``--epochs``. Prints a markdown table and writes a plot (each gain with its 95% interval).

    python benchmarks/cstar_epochs.py runs/cstar16/report.json runs/cstar64/report.json ... [--plot PNG]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = (  # (label, task, metric, against)
    ("kids, accuracy", "has_kids", "accuracy", "no_pretraining"),
    ("kids, macro-F1", "has_kids", "macro_f1", "no_pretraining"),
    ("household size, accuracy", "household_size", "accuracy", "no_pretraining"),
    ("household size, macro-F1", "household_size", "macro_f1", "no_pretraining"),
    ("income band, accuracy", "income_band", "accuracy", "no_pretraining"),
    ("income band, macro-F1", "income_band", "macro_f1", "no_pretraining"),
    ("kids, accuracy vs bag of categories", "has_kids", "accuracy", "bag_of_categories"),
    ("kids, macro-F1 vs bag of categories", "has_kids", "macro_f1", "bag_of_categories"),
    ("household size, accuracy vs bag of categories", "household_size", "accuracy", "bag_of_categories"),
    ("household size, macro-F1 vs bag of categories", "household_size", "macro_f1", "bag_of_categories"),
)


def gains(report: dict) -> dict[str, tuple[float, float, float]]:
    """{row label: (paired difference, low, high)}: over the same encoder untrained unless the label names
    another method; completion's Recall@10 too."""
    out = {}
    for label, task, metric, against in ROWS:
        key = "pretraining_gain" if against == "no_pretraining" else f"gain_over_{against}"
        g = report["profiling"][task][key][metric]
        out[label] = (g["value"], *g["ci95"])
    for against, name in (("no_pretraining", "completion, Recall@10"),
                          ("frequency_popularity", "completion, Recall@10 vs frequency + popularity")):
        diff = report["completion"]["gain_recall@10"][against]
        out[name] = (diff["value"], *diff["ci95"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--plot", type=Path, default=Path("docs/img/cstar_epochs_cj.png"))
    args = parser.parse_args()
    reports = [json.loads(p.read_text()) for p in args.reports]

    def setup(r: dict) -> dict:
        return {"train": {k: v for k, v in r["train"].items() if k != "epochs"},
                **{k: r.get(k) for k in ("test_from", "head_from", "pretrain_history", "cv_repeats", "model")}}

    if any(setup(r) != setup(reports[0]) for r in reports):
        parser.error("the reports differ in more than --epochs (train settings, split, history, repeats or model)")
    runs = sorted(((r["train"]["epochs"], gains(r)) for r in reports), key=lambda r: r[0])
    labels = list(runs[0][1])
    print("| C-STAR minus | " + " | ".join(f"{e} epochs" for e, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for label in labels:
        print(f"| {label} | "
              + " | ".join(f"{g[label][0]:+.3f} [{g[label][1]:+.3f}, {g[label][2]:+.3f}]" for _, g in runs) + " |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [e for e, _ in runs]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    panels = (("over the same encoder, untrained", [x for x in labels if " vs " not in x]),
              ("over bag of categories / frequency + popularity", [x for x in labels if " vs " in x]))
    for ax, (title, rows) in zip(axes, panels):
        for i, label in enumerate(rows):
            values = [g[label] for _, g in runs]
            shift = [e * (1 + 0.03 * (i - len(rows) / 2)) for e in epochs]
            ax.errorbar(shift, [v[0] for v in values],
                        yerr=[[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]],
                        marker="o", capsize=3, label=label.replace(" vs bag of categories", "").replace(
                            " vs frequency + popularity", " (vs frequency + popularity)"))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(epochs, [str(e) for e in epochs])
        ax.set_xlabel("pre-training epochs")
        ax.set_title(f"C-STAR's gain {title}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("paired difference, 95% interval")
    fig.suptitle("C-STAR on Complete Journey: what longer pre-training buys")
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
