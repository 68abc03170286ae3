"""Quick profiling read of C-STAR settings: pre-train one variant, probe age group and postal area.

    .venv/bin/python scripts/cstar_variants.py NAME '{"d_model": 128, "d_ff": 256}' EPOCHS [--data data/tafeng]

NAME ``untrained`` skips pre-training. The probe, folds, cut-off (2001-02-01) and 20% hold-out are those of
``voicecart evaluate cstar``; only profiling is run (about 3 minutes for 3 epochs on 2 cores), so settings can
be compared before a full evaluation. Prints one JSON line: probe accuracy, macro-F1 and NMI per label, and
the paired accuracy difference to the bag-of-categories baseline. The variant table in docs/cstar.md was
measured with it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from voicecart.data import connect
from voicecart.trajectory.baselines import BagOfCategories
from voicecart.trajectory.embed import embed_events
from voicecart.trajectory.evaluate import (EvaluationConfig, customer_labels, encoder_setup, paired_difference,
                                           pretraining_holdout)
from voicecart.trajectory.model import CStar
from voicecart.trajectory.pretrain import TrainConfig, pretrain
from voicecart.trajectory.tasks import profiling
from voicecart.trajectory.trajectories import as_day, load_events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("overrides", help="CStarConfig fields as JSON, e.g. '{\"n_layers\": 3}'")
    ap.add_argument("epochs", type=int)
    ap.add_argument("--data", type=Path, default=Path("data/tafeng"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ev = EvaluationConfig()  # the evaluation's cut-off, hold-out, labels and seed
    con = connect(args.data)
    overrides = json.loads(args.overrides)
    window, vocab, cfg = encoder_setup(load_events(con), ev.test_from, overrides)
    enc, day = window.encode(vocab), as_day(ev.test_from)
    if args.name == "untrained":
        torch.manual_seed(ev.seed)
        model = CStar(cfg).eval()
    else:
        keep = np.flatnonzero(~pretraining_holdout(len(window), ev.holdout, ev.seed))
        model = pretrain(window.select(keep).encode(vocab), vocab, day, cfg,
                         TrainConfig(epochs=args.epochs, seed=ev.seed), None).model
    emb = embed_events(model, enc, day)
    bag = BagOfCategories(vocab.sizes[2], cfg.dim, ev.seed).fit(enc).transform(enc)
    out: dict[str, object] = {"name": args.name, "overrides": overrides, "epochs": args.epochs}
    for label, values in customer_labels(con, enc.customer_ids, ev.labels).items():
        rows = np.flatnonzero((enc.lengths > 0) & np.array([v is not None for v in values]))
        mine, theirs = profiling(emb[rows], values[rows], seed=ev.seed), profiling(bag[rows], values[rows], seed=ev.seed)
        y = mine["_y"]
        out[label] = {"accuracy": mine["accuracy"]["value"], "macro_f1": mine["macro_f1"]["value"],
                      "nmi": mine["nmi"]["value"], "bag_of_categories_accuracy": theirs["accuracy"]["value"],
                      "minus_bag_of_categories": paired_difference(mine["_pred"] == y, theirs["_pred"] == y, ev.seed)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
