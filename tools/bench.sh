#!/usr/bin/env bash
# `make bench`: LSTMVision and PyTorch on the same configurations for ROUNDS rounds (default 3), each measurement
# taken by both back to back (tools/bench_rounds.py, as this machine's speed drifts from minute to minute), then a
# table of the median ratio per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
ROUNDS=${ROUNDS:-3}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tools/requirements.txt
fi
mkdir -p runs
"$VENV/bin/python" tools/bench_rounds.py "$ROUNDS"
