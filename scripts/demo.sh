#!/usr/bin/env bash
# The README's main job on the embedded defaults: real Ta-Feng end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA="${DATA:-data}"
.venv/bin/voicecart data prepare --source tafeng --out "$DATA/tafeng"
.venv/bin/voicecart data describe "$DATA/tafeng"
