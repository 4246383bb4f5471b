#!/usr/bin/env bash
# Throughput of 2 MPI ranks × 1 thread against 1 process × 2 threads, one epoch per model kind (release build with
# the MPI trait): training images/s and all-reduce milliseconds a step, as a Markdown table (docs/distributed.md).
# Usage: tools/mpi-bench.sh [BIN (default .build/release/lstmvision)] [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$repo/.build/release/lstmvision}"
if [ -n "${2:-}" ]; then WORK="$2"; mkdir -p "$WORK"; else WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT; fi
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
common=(--epochs 1 --batch-size 64 --no-tensorboard --warmup 5)
declare -A runs=(
  [row]="train classification --model row --hidden 128 --limit 3000"
  [patch]="train classification --model patch --hidden 128 --limit 3000"
  [renet]="train classification --model renet --hidden 64 --limit 1500"
  [detector]="train detection --train-count 512 --test-count 16"
)
echo "| model | parameters | 1 process × 2 threads (img/s) | 2 ranks × 1 thread (img/s) |" \
  "all-reduce (waiting before it), ms/step |"
echo "|---|---|---|---|---|"
for kind in row patch renet detector; do
  read -r -a args <<< "${runs[$kind]}"
  "$BIN" "${args[@]}" "${common[@]}" --threads 2 --out "$WORK/$kind-1" > "$WORK/$kind-1.txt"
  mpirun -np 2 --oversubscribe "${root[@]}" "$BIN" "${args[@]}" "${common[@]}" --threads 1 --out "$WORK/$kind-2" \
    > "$WORK/$kind-2.txt"
  one=$(grep -ao "epoch 1: .*" "$WORK/$kind-1.txt" | sed -E 's/.*, ([0-9]+) img\/s.*/\1/')
  two=$(grep -ao "epoch 1: .*" "$WORK/$kind-2.txt" | sed -E 's/.*, ([0-9]+) img\/s.*/\1/')
  ms=$(grep -ao "all-reduce [0-9.]* ms a step (after [0-9.]* ms" "$WORK/$kind-2.txt" | tail -1 | awk '{print $2 " (" $7 ")"}')
  params=$(grep -aoE "[0-9]+ parameters" "$WORK/$kind-1.txt" | head -1 | awk '{print $1}')
  echo "| $kind | $params | $one | $two | $ms |"
done
