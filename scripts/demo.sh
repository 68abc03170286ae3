#!/usr/bin/env bash
# The README's main job, end to end on the embedded defaults: set up .venv (scripts/setup.sh),
# prepare the data, run the whole training pipeline locally through kfp.local (features, C-STAR,
# ranker, export, evaluation on update against the champion or the strongest baseline, register),
# then serve on localhost and answer a few sample utterances: the promoted champion, else the
# current champion, else the strongest baseline (exported as a bundle). Exits non-zero when the
# run fails or nothing answers.
#   SOURCE=tafeng          the data source (`voicecart data prepare --source`); DATA its prepared folder
#   MAX_CUSTOMERS=5000     a quicker run on a sample of customers (0: all)
#   WINDOW_START, TEST_FROM, WINDOW_END   the data window (default: the pipeline's, Ta-Feng's months)
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE="${SOURCE:-tafeng}"
DATA="${DATA:-data/$SOURCE}"
bash scripts/setup.sh
.venv/bin/voicecart data prepare --source "$SOURCE" --out "$DATA"
window=()
[ -n "${WINDOW_START:-}" ] && window+=(--window-start "$WINDOW_START")
[ -n "${TEST_FROM:-}" ] && window+=(--test-from "$TEST_FROM")
[ -n "${WINDOW_END:-}" ] && window+=(--window-end "$WINDOW_END")
exec .venv/bin/voicecart pipeline run --local --data "$DATA" --registry runs/registry \
  --max-customers "${MAX_CUSTOMERS:-0}" "${window[@]}"
