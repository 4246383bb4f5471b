#!/usr/bin/env bash
# Checks against references nobody here wrote, run by `make test` after the Swift suite: ONNX Runtime runs every
# exported model kind (tools/onnx-check.sh) and TensorBoard's own reader reads a run's event files back
# (tools/tensorboard-check.sh). Installs onnx, onnxruntime and tensorboard from PyPI into $INTEROP_VENV when they
# are missing, so that neither check can be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${INTEROP_VENV:-.venv-interop}
if ! "$VENV/bin/python" -c "import onnx, onnxruntime, tensorboard, numpy" 2>/dev/null; then
  echo "interop-check: installing tools/interop-requirements.txt into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tools/interop-requirements.txt
fi
BIN=${BIN:-.build/debug/lstmvision}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bash tools/onnx-check.sh "$VENV/bin/python" "$BIN" "$WORK/onnx"
bash tools/tensorboard-check.sh "$VENV/bin/python" "$BIN" "$WORK/tensorboard"
echo "interop-check: passed"
