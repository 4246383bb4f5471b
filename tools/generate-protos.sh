#!/usr/bin/env bash
# Regenerates Sources/LSTMVisionProtos from onnx.proto (as shipped in the onnx wheel of tools/interop-requirements.txt)
# and Protos/tensorboard_event.proto. Run once when either changes; the generated code is committed, so that
# building LSTMVision needs neither protoc nor the plugin. Needs protoc (Debian's protobuf-compiler) and
# protoc-gen-swift of the swift-protobuf version Package.swift names:
#   git clone -b 1.39.0 https://github.com/apple/swift-protobuf && swift build -c release --product protoc-gen-swift
# PLUGIN=path/to/protoc-gen-swift PYTHON=python-with-onnx bash tools/generate-protos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGIN=${PLUGIN:?set PLUGIN to protoc-gen-swift}
PYTHON=${PYTHON:-.venv-interop/bin/python}
ONNX_DIR=$("$PYTHON" -c "import onnx, os; print(os.path.dirname(onnx.__file__))")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp "$ONNX_DIR/onnx.proto" "$TMP/onnx.proto"
cp Protos/tensorboard_event.proto "$TMP/"
OUT=Sources/LSTMVisionProtos
mkdir -p "$OUT"
protoc --plugin=protoc-gen-swift="$PLUGIN" -I "$TMP" --swift_opt=Visibility=Public --swift_out="$OUT" \
  "$TMP/onnx.proto" "$TMP/tensorboard_event.proto"
echo "generated: $(ls "$OUT")"
