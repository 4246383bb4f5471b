#!/usr/bin/env bash
# TensorBoard's reader on LSTMVision's event files: a short classification run, stopped after its first step and
# resumed (two event files), and a short detection run into --tensorboard DIR, each read back with EventAccumulator
# and compared with its log.csv and schedule (tools/tensorboard_check.py); a run with --no-tensorboard writes none.
# Usage: tools/tensorboard-check.sh PYTHON BIN WORKDIR (BIN: a debug build is fine; this takes about half a minute).
set -euo pipefail
if [ $# -ne 3 ]; then echo "usage: $0 PYTHON BIN WORKDIR" >&2; exit 2; fi
PYTHON=$1 BIN=$2 WORK=$3
CHECK=$(dirname "$0")/tensorboard_check.py
rm -rf "$WORK"
mkdir -p "$WORK"
log() { echo "tensorboard-check: $*"; }

# Classification: 180 training images in batches of 32 (6 steps an epoch), 2 epochs; --time-limit 0 stops after
# the first step, --resume goes on in a second event file.
CLS=$WORK/classification
common=(--limit 200 --hidden 16 --epochs 2 --batch-size 32 --warmup 3)
log "classification: $BIN train classification ${common[*]} --time-limit 0, then --resume"
"$BIN" train classification "${common[@]}" --time-limit 0 --out "$CLS" > "$WORK/classification-1.txt"
"$BIN" train classification --resume --out "$CLS" > "$WORK/classification-2.txt"
# Epoch 1 was split by the resumption: its train_loss covers only the resumed steps, so only epoch 2's is a mean.
"$PYTHON" "$CHECK" --run "$CLS" --logdir "$CLS/tensorboard" --task classification --files 2 --mean-epochs 2

# Detection: 48 synthetic canvases in batches of 8 (6 steps an epoch), 2 epochs, a small detector.
DET=$WORK/detection
log "detection: $BIN train detection (48 canvases, 2 epochs) --tensorboard $WORK/detection-tensorboard"
"$BIN" train detection --train-count 48 --test-count 16 --hidden 16 --conv-widths 8,8,8,8,8 --max-boxes 2 \
  --epochs 2 --batch-size 8 --warmup 2 --out "$DET" --tensorboard "$WORK/detection-tensorboard" > "$WORK/detection.txt"
if [ -e "$DET/tensorboard" ]; then log "FAILED: --tensorboard DIR also wrote $DET/tensorboard"; exit 1; fi
"$PYTHON" "$CHECK" --run "$DET" --logdir "$WORK/detection-tensorboard" --task detection --files 1 --mean-epochs 1,2

# --no-tensorboard: no event files.
OFF=$WORK/off
"$BIN" train classification --limit 100 --hidden 8 --epochs 1 --no-tensorboard --out "$OFF" > "$WORK/off.txt"
if [ -e "$OFF/tensorboard" ]; then log "FAILED: --no-tensorboard wrote $OFF/tensorboard"; exit 1; fi
test -s "$OFF/log.csv" || { log "FAILED: the --no-tensorboard run wrote no log.csv"; exit 1; }
log "--no-tensorboard: no event files"
log "passed"
