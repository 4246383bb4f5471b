#!/usr/bin/env bash
# `make bench`: LSTMVision, PyTorch and (inference) ONNX Runtime on the same models for ROUNDS rounds (default 3),
# each measurement taken by all sides back to back (tools/bench_rounds.py, as this machine's speed drifts from minute
# to minute), then a table of the median ratios per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
ROUNDS=${ROUNDS:-3}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, onnxruntime" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tools/requirements.txt
fi
mkdir -p runs
"$VENV/bin/python" tools/bench_rounds.py "$ROUNDS"
