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
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from voicecart.data import connect
from voicecart.trajectory.baselines import BagOfCategories
from voicecart.trajectory.embed import embed_events
from voicecart.trajectory.model import CStar, CStarConfig
from voicecart.trajectory.pretrain import TrainConfig, pretrain
from voicecart.trajectory.tasks import bootstrap, profiling
from voicecart.trajectory.trajectories import CategoryVocab, as_day, load_events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("overrides", help="CStarConfig fields as JSON, e.g. '{\"n_layers\": 3}'")
    ap.add_argument("epochs", type=int)
    ap.add_argument("--data", type=Path, default=Path("data/tafeng"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    con = connect(args.data)
    cut = datetime(2001, 2, 1)
    base = CStarConfig(1, 1, 1, **json.loads(args.overrides))
    window = load_events(con).window(cut, max_events=base.max_events)
    vocab = CategoryVocab.from_paths(window.l1, window.l2, window.l3)
    cfg = replace(base, n_l1=vocab.sizes[0], n_l2=vocab.sizes[1], n_l3=vocab.sizes[2])
    enc = window.encode(vocab)
    holdout = np.random.default_rng(0).random(len(window)) < 0.2  # as EvaluationConfig.holdout
    if args.name == "untrained":
        torch.manual_seed(0)
        model = CStar(cfg).eval()
    else:
        model = pretrain(window.select(np.flatnonzero(~holdout)).encode(vocab), vocab, as_day(cut), cfg,
                         TrainConfig(epochs=args.epochs), None).model
    emb = embed_events(model, enc, as_day(cut))
    bag = BagOfCategories(vocab.sizes[2], cfg.dim, 0).fit(enc).transform(enc)
    customers = con.sql("SELECT customer_id, age_group, postal_area FROM customers").to_arrow_table()
    out: dict[str, object] = {"name": args.name, "overrides": json.loads(args.overrides), "epochs": args.epochs}
    for label in ("age_group", "postal_area"):
        of = dict(zip(customers.column("customer_id").to_pylist(), customers.column(label).to_pylist()))
        values = np.array([of.get(c) for c in enc.customer_ids], dtype=object)
        rows = np.flatnonzero((enc.lengths > 0) & np.array([v is not None for v in values]))
        mine, theirs = profiling(emb[rows], values[rows]), profiling(bag[rows], values[rows])
        y = mine["_y"]
        out[label] = {"accuracy": mine["accuracy"]["value"], "macro_f1": mine["macro_f1"]["value"],
                      "nmi": mine["nmi"]["value"], "bag_of_categories_accuracy": theirs["accuracy"]["value"],
                      "minus_bag_of_categories": bootstrap((mine["_pred"] == y).astype(float)
                                                           - (theirs["_pred"] == y).astype(float)).as_dict()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
