#!/usr/bin/env bash
# ConvLSTM training speed against PyTorch, in paired rounds (docs/convlstm.md): each round times LSTMVision's
# `train frames` (one epoch of 6 batches; sequences/s from log.csv, validation excluded, the first batch included)
# and the PyTorch FramePredictor of issue 23 (tools/bench_convlstm_torch.py: 1 warm-up batch, then 5 timed), back to
# back, the order alternating; prints each round's ratio and the median.
# Usage: tools/bench-convlstm.sh [PYTHON (with torch)] [BIN (release build)] [ROUNDS]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-$repo/.venv/bin/python}" BIN="${2:-$repo/.build/release/lstmvision}" ROUNDS="${3:-3}"
[[ "$PY" == */* ]] && PY="$(realpath -s "$PY")"
HIDDEN=64,64 KERNEL=5 PATCH=4 BATCH=16 THREADS=2
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
"$BIN" moving-mnist --out "$WORK/data" --train $((6 * BATCH + 16)) --test 1 --seed 7 > /dev/null
ours() {
    rm -rf "$WORK/run"
    "$BIN" train frames --data "$WORK/data" --validation 16 --epochs 1 --batch-size $BATCH --hidden $HIDDEN \
        --kernel $KERNEL --patch $PATCH --threads $THREADS --out "$WORK/run" --no-tensorboard > /dev/null
    tail -1 "$WORK/run/log.csv" | awk -F, '{ print $NF }'
}
theirs() {
    (cd "$repo/tools" && "$PY" bench_convlstm_torch.py --data "$WORK/data/train.npy" --hidden $HIDDEN \
        --kernel $KERNEL --patch $PATCH --batch $BATCH --steps 5 --threads $THREADS) \
        | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.read())["sequences_per_second"])'
}
ratios=()
echo "ConvLSTM training, FramePredictor hidden $HIDDEN, k $KERNEL, patch $PATCH, batch $BATCH, $THREADS threads each"
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then a=$(ours); b=$(theirs); else b=$(theirs); a=$(ours); fi
    r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
    ratios+=("$r")
    printf 'round %d: LSTMVision %.2f sequences/s, PyTorch %.2f sequences/s, ratio %s\n' "$round" "$a" "$b" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "ratio per round: ${ratios[*]}; median ${median}×"
