#!/usr/bin/env bash
# Data-parallel training on Open MPI against one process (docs/distributed.md), run by `make test`:
#  - 2 ranks (mpirun -np 2) and one process computing the same 2 shards per batch (--shards 2) end an epoch with
#    identical weights, for a classifier and for a detector with a refiner; against a plain one-process run (one
#    shard; a detector without the refiner, whose random crops are drawn per shard) the largest relative difference
#    is printed and held to 1e-3, the validation accuracy and AP to 0.1 points;
#  - a 2-rank run resumed for a second epoch ends as the uninterrupted 2-epoch run does;
#  - SIGTERM seen by rank 1 alone (the test hook LSTMVISION_TEST_SIGNAL_AT_STEP, during step 5): both ranks stop
#    after step 5 with one line and exit 143; resumed, the run ends bit-identical to the uninterrupted one;
#  - bad starts (more ranks than images, ranks given other options or data), a folder another run holds, and a
#    non-finite loss give one error (rank 0's) and a non-zero exit;
#  - a rank killed mid-run ends the job within seconds, and its last checkpoint resumes;
#  - a rank stopped (SIGSTOP) mid-run: the other's collective times out (--collective-timeout 3), the job ends with
#    one error within seconds, and its last checkpoint resumes;
#  - `tune` over 2 ranks: every trial once, on a rank the study names, the best scored once, every rank ends;
#  - as root, two ranks as two hosts over TCP (tools/mpi-netns-check.sh).
# Usage: tools/mpi-check.sh [BIN (an MPI-trait build; default .build/debug/lstmvision)] [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$repo/.build/debug/lstmvision}"
if [ -n "${2:-}" ]; then WORK="$2"; mkdir -p "$WORK"; else WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT; fi
log() { echo "mpi-check: $*"; }
fail() { log "FAILED: $*"; exit 1; }
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
mpi() { mpirun --oversubscribe "${root[@]}" "$@"; }
ldd "$BIN" | grep libmpi > /dev/null || fail "$BIN was built without the MPI trait (swift build --traits MPI)"
compare() { "$BIN" compare-weights "$1/last.safetensors" "$2/last.safetensors" --tolerance "$3"; }
accuracy() { tail -1 "$1/log.csv" | cut -d, -f"$2"; }

# Classification: 360 training images (400 less the 10% validation split), batches of 32 (12 steps, the last of 8).
CLS=(train classification --hidden 16 --limit 400 --batch-size 32 --threads 1 --seed 3 --no-tensorboard)
log "classification: 1 process, 1 process × 2 shards, mpirun -np 2 (one epoch each)"
"$BIN" "${CLS[@]}" --epochs 1 --out "$WORK/c1" > "$WORK/c1.txt"
"$BIN" "${CLS[@]}" --epochs 1 --out "$WORK/c1s" --shards 2 > "$WORK/c1s.txt"
mpi -np 2 "$BIN" "${CLS[@]}" --epochs 1 --out "$WORK/c2" > "$WORK/c2.txt"
log "2 ranks: $(grep -ao "epoch 1: .*all-reduce.*" "$WORK/c2.txt")"
log "classification, 2 ranks against 1 process × 2 shards (must be identical):"
compare "$WORK/c1s" "$WORK/c2" 0
log "classification, 2 ranks against 1 process:"
compare "$WORK/c1" "$WORK/c2" 1e-3
a1=$(accuracy "$WORK/c1" 5) a2=$(accuracy "$WORK/c2" 5)
log "validation accuracy: 1 process $a1, 2 ranks $a2"
awk -v a="$a1" -v b="$a2" 'BEGIN { d = (a - b) * 100; exit !(d <= 0.1 && d >= -0.1) }' \
  || fail "validation accuracies differ by more than 0.1 points"
[ "$(grep -c "^epoch 1:" "$WORK/c2.txt")" -eq 1 ] || fail "the 2-rank run did not print its epoch line once"

log "classification, resumed: mpirun epoch 1, then mpirun --resume to epoch 2, against 1 process × 2 shards"
"$BIN" "${CLS[@]}" --schedule constant --epochs 2 --out "$WORK/r1" --shards 2 > "$WORK/r1.txt"
mpi -np 2 "$BIN" "${CLS[@]}" --schedule constant --epochs 1 --out "$WORK/r2" > "$WORK/r2a.txt"
mpi -np 2 "$BIN" train classification --resume --epochs 2 --threads 1 --out "$WORK/r2" > "$WORK/r2b.txt"
grep -q "^resumed from" "$WORK/r2b.txt" || fail "the 2-rank run did not resume"
compare "$WORK/r1" "$WORK/r2" 0

# Ranks may see a SIGTERM at different steps: they agree on it in each step's exchange, and all stop at one step
# (had they not, one would wait alone in a collective: --collective-timeout 20 would end the job with an error).
log "SIGTERM seen by rank 1 alone during step 5: both stop after step 5; mpirun --resume, against the same reference"
status=0
mpi -np 1 "$BIN" "${CLS[@]}" --schedule constant --epochs 2 --collective-timeout 20 --out "$WORK/t2" \
  : -np 1 env LSTMVISION_TEST_SIGNAL_AT_STEP=5 "$BIN" "${CLS[@]}" --schedule constant --epochs 2 \
  --collective-timeout 20 --out "$WORK/t2" > "$WORK/t2.txt" 2> "$WORK/t2.err" || status=$?
[ "$status" -eq 143 ] || { cat "$WORK/t2.err"; fail "SIGTERM: mpirun exited $status, not 143"; }
[ "$(grep -c "^lstmvision: stopped by SIGTERM after step 5 (batch 5 of 12 of epoch 1)" "$WORK/t2.err")" -eq 1 ] \
  || { cat "$WORK/t2.err"; fail "SIGTERM: not one line saying both ranks stopped after step 5"; }
! grep -q "^lstmvision: error" "$WORK/t2.err" || { cat "$WORK/t2.err"; fail "SIGTERM: an error"; }
[ ! -e "$WORK/t2/run.lock" ] || fail "SIGTERM: the lock file was left"
log "SIGTERM: $(grep -a "^lstmvision: stopped" "$WORK/t2.err" | cut -c1-150)…"
mpi -np 2 "$BIN" train classification --resume --threads 1 --out "$WORK/t2" > "$WORK/t2b.txt"
grep -aq "^resumed from .* at epoch 1, batch 6 (step 5)" "$WORK/t2b.txt" || fail "SIGTERM: did not resume at step 5"
compare "$WORK/r1" "$WORK/t2" 0

# Detection with a refiner: 32 synthetic canvases, batches of 8 (4 steps); rank 0 alone validates.
DET=(train detection --train-count 32 --test-count 16 --hidden 16 --conv-widths 8,8,8,8,8 --max-boxes 2 --epochs 1
     --batch-size 8 --warmup 2 --threads 1 --no-tensorboard --refiner --refiner-hidden 8)
log "detection: 1 process × 2 shards, mpirun -np 2"
"$BIN" "${DET[@]}" --out "$WORK/d1s" --shards 2 > "$WORK/d1s.txt"
mpi -np 2 "$BIN" "${DET[@]}" --out "$WORK/d2" > "$WORK/d2.txt"
log "detection, 2 ranks against 1 process × 2 shards (must be identical):"
compare "$WORK/d1s" "$WORK/d2" 0
[ "$(accuracy "$WORK/d1s" 5)" = "$(accuracy "$WORK/d2" 5)" ] || fail "the detection runs' validation AP differ"
# Without the refiner nothing random depends on the shard: 2 ranks against a plain one-process run.
DETPLAIN=(train detection --train-count 32 --test-count 16 --hidden 16 --conv-widths 8,8,8,8,8 --max-boxes 2
          --epochs 1 --batch-size 8 --warmup 2 --threads 1 --no-tensorboard)
"$BIN" "${DETPLAIN[@]}" --out "$WORK/p1" > "$WORK/p1.txt"
mpi -np 2 "$BIN" "${DETPLAIN[@]}" --out "$WORK/p2" > "$WORK/p2.txt"
log "detection without a refiner, 2 ranks against 1 process:"
compare "$WORK/p1" "$WORK/p2" 1e-3
ap1=$(accuracy "$WORK/p1" 5) ap2=$(accuracy "$WORK/p2" 5)
log "validation AP: 1 process $ap1, 2 ranks $ap2"
awk -v a="$ap1" -v b="$ap2" 'BEGIN { d = (a - b) * 100; exit !(d <= 0.1 && d >= -0.1) }' \
  || fail "validation APs differ by more than 0.1 points"

# Bad starts: one error line (rank 0's), a non-zero exit.
expect_error() {   # expect_error NAME TEXT COMMAND...
  local name="$1" text="$2"; shift 2
  if "$@" > "$WORK/$name.txt" 2> "$WORK/$name.err"; then fail "$name: the run did not fail"; fi
  grep -q "$text" "$WORK/$name.err" || { cat "$WORK/$name.err"; fail "$name: no error saying '$text'"; }
  [ "$(grep -c "^lstmvision: error:" "$WORK/$name.err")" -eq 1 ] \
    || { cat "$WORK/$name.err"; fail "$name: not one error line"; }
  log "$name: $(grep "^lstmvision: error:" "$WORK/$name.err")"
}
expect_error "more-ranks" "3 ranks for 2 training images" \
  mpi -np 3 "$BIN" train detection --train-count 2 --test-count 2 --hidden 8 --conv-widths 8,8,8,8,8 --epochs 1 \
  --threads 1 --no-tensorboard --out "$WORK/bad1"
expect_error "other-options" "differ from rank 0 in training options (rank 1)" \
  mpi -np 1 "$BIN" "${CLS[@]}" --epochs 1 --out "$WORK/bad2" : -np 1 "$BIN" "${CLS[@]}" --epochs 2 --out "$WORK/bad2"
expect_error "other-data" "differ from rank 0 in training data (rank 1)" \
  mpi -np 1 "$BIN" "${CLS[@]}" --epochs 1 --out "$WORK/bad3" : -np 1 "$BIN" "${CLS[@]}" --limit 300 --epochs 1 \
  --out "$WORK/bad3"
# A folder another process holds (flock, as a run's lock, with its pid written in): rank 0 names it, all exit.
mkdir -p "$WORK/locked"
( flock -x 9; printf 'pid %s\nhost %s\nstarted 2026-01-01T00:00:00Z\n' "$BASHPID" "$(hostname)" >&9; exec sleep 120 ) \
  9> "$WORK/locked/run.lock" &
holder=$!
for _ in $(seq 100); do [ -s "$WORK/locked/run.lock" ] && break; sleep 0.05; done
expect_error "locked" "locked is in use by another training run: process $holder on" \
  mpi -np 2 "$BIN" "${CLS[@]}" --epochs 1 --out "$WORK/locked"
kill "$holder"
# A non-finite loss (SGD at lr 3e38 overflows the weights by step 3): every rank sees it in the summed figures.
expect_error "non-finite" "non-finite loss (inf) at step 3" \
  mpi -np 2 "$BIN" "${CLS[@]}" --epochs 1 --optimizer sgd --lr 3e38 --clip 0 --schedule constant --out "$WORK/nan"

# Waits for the first checkpoint of the job writing to $WORK/NAME and prints the process id of its rank 1 (or fails,
# on stderr, which ends the script through set -e).
rank1_after_checkpoint() {
  local name=$1 p
  for _ in $(seq 600); do [ -e "$WORK/$name/last.state.safetensors" ] && break; sleep 0.1; done
  [ -e "$WORK/$name/last.state.safetensors" ] || fail "$name rank: no checkpoint was written" >&2
  for p in $(pgrep -f -- "--out $WORK/$name"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null | grep -x "OMPI_COMM_WORLD_RANK=1" > /dev/null; then
      echo "$p"
      return
    fi
  done
  fail "$name rank: rank 1 not found" >&2
}

# A rank that dies (SIGKILL to rank 1 after the first checkpoint): mpirun ends the other within seconds, non-zero,
# and the last checkpoint, written atomically by rank 0, resumes.
DEAD=(train classification --hidden 16 --limit 500 --batch-size 32 --threads 1 --seed 3 --no-tensorboard --epochs 2
      --checkpoint-every 4 --out "$WORK/dead")
log "dead rank: mpirun -np 2, rank 1 killed after the first checkpoint"
mpi -np 2 "$BIN" "${DEAD[@]}" > "$WORK/dead.txt" 2> "$WORK/dead.err" &
job=$!
victim=$(rank1_after_checkpoint dead)
killed=$(date +%s.%N)
kill -KILL "$victim"
if wait "$job"; then fail "dead rank: the job exited 0"; fi
took=$(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
awk -v t="$took" 'BEGIN { exit !(t < 10) }' || fail "dead rank: the job took $took s to end"
grep -q "signal 9" "$WORK/dead.err" || { cat "$WORK/dead.err"; fail "dead rank: mpirun did not name the killed rank"; }
log "dead rank: the job ended $took s after the kill: $(grep -a -m1 "signal 9" "$WORK/dead.err" | sed 's/^ *//')"
mpi -np 2 "$BIN" train classification --resume --threads 1 --out "$WORK/dead" > "$WORK/dead-resumed.txt"
grep -aq "^resumed from" "$WORK/dead-resumed.txt" || fail "dead rank: the checkpoint did not resume"
[ "$(tail -n +2 "$WORK/dead/log.csv" | wc -l)" -eq 2 ] || fail "dead rank: the resumed run did not finish 2 epochs"
log "dead rank: $(grep -a "^resumed from" "$WORK/dead-resumed.txt"); 2 epochs done"

# A hung rank (SIGSTOP to rank 1 after the first checkpoint): rank 0's collective times out after 3 s of waiting,
# it prints one error and MPI_Abort ends the job; the last checkpoint resumes.
log "hung rank: mpirun -np 2 --collective-timeout 3, rank 1 stopped after the first checkpoint"
HUNG=(train classification --hidden 16 --limit 400 --batch-size 32 --threads 1 --seed 3 --no-tensorboard --epochs 1
      --checkpoint-every 4 --collective-timeout 3 --out "$WORK/hung")
mpi -np 2 "$BIN" "${HUNG[@]}" > "$WORK/hung.txt" 2> "$WORK/hung.err" &
job=$!
victim=$(rank1_after_checkpoint hung)
stopped=$(date +%s.%N)
kill -STOP "$victim"
for _ in $(seq 300); do kill -0 "$job" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$job" 2> /dev/null; then kill -KILL "$victim"; fail "hung rank: the job still runs 30 s later"; fi
if wait "$job"; then fail "hung rank: the job exited 0"; fi
took=$(awk -v a="$stopped" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
awk -v t="$took" 'BEGIN { exit !(t < 10) }' || fail "hung rank: the job took $took s to end"
[ "$(grep -c "^lstmvision: error: rank 0: MPI_[A-Za-z]* waited [0-9.]* s for the other ranks (--collective-timeout)" \
  "$WORK/hung.err")" -eq 1 ] && [ "$(grep -c "^lstmvision: error" "$WORK/hung.err")" -eq 1 ] \
  || { cat "$WORK/hung.err"; fail "hung rank: not one error naming the timed-out collective"; }
log "hung rank: the job ended $took s after the stop: $(grep -a "^lstmvision: error" "$WORK/hung.err" | cut -c1-110)…"
mpi -np 2 "$BIN" train classification --resume --threads 1 --out "$WORK/hung" > "$WORK/hung-resumed.txt"
grep -aq "^resumed from" "$WORK/hung-resumed.txt" || fail "hung rank: the checkpoint did not resume"
[ "$(tail -n +2 "$WORK/hung/log.csv" | wc -l)" -eq 1 ] || fail "hung rank: the resumed run did not finish its epoch"
log "hung rank: $(grep -a "^resumed from" "$WORK/hung-resumed.txt"); the epoch done"

# A search spread over ranks: rank 0 owns the study; each rank runs one trial at a time (--workers 1) as a child
# process on its machine. Every trial runs once, on a rank the study names; the best is scored once; all ranks end.
log "tune: mpirun -np 2, 4 trials of up to 2 epochs, one at a time on each rank"
printf 'hidden: {choice: [4, 8]}\nlr: {float: [1.0e-3, 1.0e-2], log: true}\n' > "$WORK/space.yaml"
mpi -np 2 "$BIN" tune --space "$WORK/space.yaml" --trials 4 --epochs 2 --eta 2 --workers 1 --threads 1 \
  --sampler random --limit 200 --out "$WORK/tune" --json > "$WORK/tune.json" 2> "$WORK/tune.err" \
  || { cat "$WORK/tune.err"; fail "tune: mpirun exited non-zero"; }
study="$WORK/tune/study.json"
[ "$(grep -c '"number" : ' "$study")" -eq 4 ] || fail "tune: not 4 trials in the study"
[ "$(grep -c '"rank" : [01],' "$study")" -eq 4 ] || fail "tune: not every trial has its rank"
grep -q '"rank" : 0,' "$study" && grep -q '"rank" : 1,' "$study" \
  || fail "tune: the trials did not spread over both ranks"
! grep -q '"state" : "running"' "$study" || fail "tune: a trial was left running"
[ "$(grep -c "^trial [0-9]* started" "$WORK/tune.err")" -eq 4 ] || { cat "$WORK/tune.err"; fail "tune: not 4 starts"; }
grep -q '"test_accuracy":' "$WORK/tune.json" || fail "tune: the best model was not scored on the test split"
for n in 000 001 002 003; do [ -s "$WORK/tune/trials/$n/log.csv" ] || fail "tune: trial $n has no log.csv"; done
! pgrep -f -- "--out $WORK/tune/trials/" > /dev/null || fail "tune: a trial process outlived the search"
log "tune: $(grep -c '"rank" : 0,' "$study") trials on rank 0, $(grep -c '"rank" : 1,' "$study") on rank 1;"\
  "$(grep -a "^test accuracy" "$WORK/tune.err" | cut -c1-60)…"

if [ "$(id -u)" -eq 0 ]; then
  bash "$repo/tools/mpi-netns-check.sh" "$BIN" "$WORK/netns"
else
  log "not root: the two-host check (tools/mpi-netns-check.sh, ip netns) was not run"
fi
log "passed"
