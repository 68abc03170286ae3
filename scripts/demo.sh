#!/usr/bin/env bash
# The README's main job on the embedded defaults, end to end on real Ta-Feng:
# prepare the data, run the whole training pipeline locally through kfp.local (features, C-STAR,
# ranker, export, evaluation on update against the champion or the strongest baseline, register),
# then serve the champion on localhost and answer a few sample utterances.
# MAX_CUSTOMERS=5000 bash scripts/demo.sh gives a quicker run on a sample of customers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA="${DATA:-data}"
.venv/bin/voicecart data prepare --source tafeng --out "$DATA/tafeng"
.venv/bin/voicecart data describe "$DATA/tafeng"
.venv/bin/voicecart pipeline run --local --data "$DATA/tafeng" --registry runs/registry \
  --max-customers "${MAX_CUSTOMERS:-0}"
