#!/usr/bin/env bash
# `make bench`: LSTMVision and PyTorch on the same configurations in one go, then a table with ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tools/requirements.txt
fi
mkdir -p runs
.build/release/lstmvision bench --json --threads 2 "$@" | tee runs/bench-lstmvision.jsonl
"$VENV/bin/python" tools/bench_torch.py --threads 2 | tee runs/bench-pytorch.jsonl
"$VENV/bin/python" tools/bench_table.py runs/bench-lstmvision.jsonl runs/bench-pytorch.jsonl docs/performance.md
