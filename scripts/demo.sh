#!/usr/bin/env bash
# The README's main job, end to end on the embedded defaults: set up .venv (scripts/setup.sh),
# prepare the data, run the whole training pipeline locally through kfp.local (features, C-STAR,
# ranker, export, evaluation on update against the champion or the strongest baseline, register),
# then serve on localhost and answer a few sample utterances: the promoted champion, else the
# current champion, else the strongest baseline (exported as a bundle). Exits non-zero when the
# run fails or nothing answers.
#   SOURCE=completejourney the data source (`voicecart data prepare --source`: completejourney, tafeng,
#                          instacart, ...); DATA its prepared folder
#   MAX_CUSTOMERS=0        a quicker run on a sample of customers (0: all)
#   WINDOW_START, TEST_FROM, WINDOW_END   the data window (default: the source's, below)
#   EPOCHS                 ranker epochs (default: the source's, below)
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE="${SOURCE:-completejourney}"
DATA="${DATA:-data/$SOURCE}"
case "$SOURCE" in
  # Complete Journey (2017): the year's history, the 8 weeks before December train (4 epochs), Dec 1-14
  # evaluates (HR@1 0.3801; 200 s on a quiet 2-core machine, docs/benchmarks.md "main job on Complete Journey");
  # WINDOW_START=2017-09-01 EPOCHS=2 is the quicker window (HR@1 0.3563, about half the time).
  completejourney) defaults=(2017-01-01 2017-12-01 2017-12-15 4) ;;
  # Ta-Feng (Nov 2000 - Feb 2001): history from November, February evaluates.
  tafeng) defaults=(2000-11-01 2001-02-01 2001-03-01 6) ;;
  *) defaults=("" "" "" "") ;;
esac
WINDOW_START="${WINDOW_START:-${defaults[0]}}"
TEST_FROM="${TEST_FROM:-${defaults[1]}}"
WINDOW_END="${WINDOW_END:-${defaults[2]}}"
EPOCHS="${EPOCHS:-${defaults[3]}}"
bash scripts/setup.sh
.venv/bin/voicecart data prepare --source "$SOURCE" --out "$DATA"
window=()
[ -n "$WINDOW_START" ] && window+=(--window-start "$WINDOW_START")
[ -n "$TEST_FROM" ] && window+=(--test-from "$TEST_FROM")
[ -n "$WINDOW_END" ] && window+=(--window-end "$WINDOW_END")
[ -n "$EPOCHS" ] && window+=(--epochs "$EPOCHS")
exec .venv/bin/voicecart pipeline run --local --data "$DATA" --registry runs/registry \
  --max-customers "${MAX_CUSTOMERS:-0}" "${window[@]}"
