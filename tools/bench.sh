#!/usr/bin/env bash
# `make bench`: LSTMVision and PyTorch on the same configurations, alternating for ROUNDS rounds (default 3, as
# this machine's speed drifts from minute to minute), then a table of the median ratio per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
ROUNDS=${ROUNDS:-3}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tools/requirements.txt
fi
mkdir -p runs
files=()
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS"
  .build/release/lstmvision bench --json --threads 2 "$@" | tee "runs/bench-lstmvision-$r.jsonl"
  "$VENV/bin/python" tools/bench_torch.py --threads 2 | tee "runs/bench-pytorch-$r.jsonl"
  files+=("runs/bench-lstmvision-$r.jsonl" "runs/bench-pytorch-$r.jsonl")
done
"$VENV/bin/python" tools/bench_table.py docs/performance.md "${files[@]}"
