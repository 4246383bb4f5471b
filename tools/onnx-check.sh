#!/usr/bin/env bash
# ONNX Runtime against LSTMVision on every model kind: usage onnx-check.sh PYTHON BIN WORKDIR (run by
# tools/interop-check.sh in `make test`). PYTHON has onnx, onnxruntime and numpy; BIN is lstmvision (a debug build
# will do). Exports models/ (row-1x128, row-2x128-bi, renet) and fresh-weight files of every other kind (tools/
# onnx_check.py make) with --samples, then checks each (onnx.checker full_check; ONNX Runtime on the samples in other
# batch sizes, outputs within 1e-5·max(1, |value|) of LSTMVision's). Any failure stops it with a non-zero status.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 PYTHON BIN WORKDIR" >&2; exit 2; }
PYTHON=$1 BIN=$2 WORK=$3
cd "$(dirname "$0")/.."
CHECK=tools/onnx_check.py
mkdir -p "$WORK"
start=$SECONDS
"$PYTHON" "$CHECK" make "$WORK"
# A COCO set (3 digit canvases) for the --annotations samples.
"$BIN" detect-data --train 1 --test 3 --out "$WORK/coco" > "$WORK/coco.log"

# KIND MODEL [export options...]: export with samples, then check.
check() {
  local kind=$1 model=$2
  shift 2
  "$BIN" export --model "$model" --out "$WORK/$kind.onnx" "$@" > "$WORK/$kind.log"
  "$PYTHON" "$CHECK" check "$kind" "$WORK/$kind.onnx" "$WORK/$kind.samples.safetensors"
}

check row-1x128 row-1x128 --samples 8
check row-2x128-bi row-2x128-bi --samples 6
check renet-fc256 renet --samples 6
check row-3x8 "$WORK/row-3x8.safetensors" --samples 6
check patch-1x16 "$WORK/patch-1x16.safetensors" --samples 6
check patch-2x12-bi "$WORK/patch-2x12-bi.safetensors" --samples 6
check patch-rgb-bi "$WORK/patch-rgb.safetensors" --samples 5 --images "$WORK/rgb"
check renet-2x6-nofc "$WORK/renet-2x6-nofc.safetensors" --samples 5
check det-conv+refiner "$WORK/det-conv.safetensors" --samples 4
check det-conv-plain "$WORK/det-conv-plain.safetensors" --samples 3 \
  --annotations "$WORK/coco/test/annotations.json"
check det-renet+refiner "$WORK/det-renet.safetensors" --samples 3
check det-renet-noskip "$WORK/det-renet-noskip.safetensors" --samples 3
check det-conv-renet+ref "$WORK/det-conv-renet.safetensors" --samples 3
check det-cr-rgb+refiner "$WORK/det-conv-renet-rgb.safetensors" --samples 4 --images "$WORK/rgb"
# The ends of the opset range.
check row-2x128-bi@14 row-2x128-bi --samples 3 --opset 14
check det-conv-renet@22 "$WORK/det-conv-renet.safetensors" --samples 2 --opset 22
echo "onnx-check: passed ($((SECONDS - start)) s)"
