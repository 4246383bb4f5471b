#!/usr/bin/env bash
# Surviving what clusters do to a job, in one process (docs/distributed.md, "Surviving the cluster"), run by
# `make test` on the debug build (the MPI cases are in tools/mpi-check.sh):
#  - SIGTERM mid-epoch, raised at step 5 by the test hook LSTMVISION_TEST_SIGNAL_AT_STEP, and sent by kill: exit
#    143, one line with the position and the command to resume, which ends with the weights of an uninterrupted
#    run, bit for bit (compare-weights --tolerance 0);
#  - a second signal ends the process at once (130 + 13 = 143 for SIGINT then SIGTERM: the second's status);
#  - a second run into a folder in use is refused, naming the first's pid; a SIGTERMed run removes its lock; a stale
#    lock file (its process gone) is replaced;
#  - as root, a tmpfs that fills up while a checkpoint is written: one error naming the file and the checkpoint kept,
#    exit 1, no temporary file left, and the kept checkpoint resumes to the uninterrupted run's weights.
# Usage: tools/survive-check.sh [BIN (default .build/debug/lstmvision)] [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$repo/.build/debug/lstmvision}"
mounted=""
if [ -n "${2:-}" ]; then WORK="$2"; mkdir -p "$WORK"; keep=1; else WORK="$(mktemp -d)"; keep=0; fi
cleanup() {
  if [ -n "$mounted" ]; then umount "$mounted"; fi
  if [ "$keep" -eq 0 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { echo "survive-check: $*"; }
fail() { log "FAILED: $*"; exit 1; }
compare() { "$BIN" compare-weights "$1/last.safetensors" "$2/last.safetensors" --tolerance 0; }
# run NAME COMMAND...: runs it with stdout and stderr in WORK/NAME.txt and WORK/NAME.err; its status in $status.
run() { local name="$1"; shift; status=0; "$@" > "$WORK/$name.txt" 2> "$WORK/$name.err" || status=$?; }
# stopped NAME STEP OUT: the run NAME into OUT ended with 143 and one line saying it stopped after STEP; $resume is
# the command it prints.
stopped() {
  [ "$status" -eq 143 ] || { cat "$WORK/$1.err"; fail "$1: exit status $status, not 143"; }
  [ "$(wc -l < "$WORK/$1.err")" -eq 1 ] || { cat "$WORK/$1.err"; fail "$1: not one line on stderr"; }
  grep -qF "; checkpoint $3/last.state.safetensors; resume with: " "$WORK/$1.err" \
    && grep -q "^lstmvision: stopped by SIGTERM after step $2 (" "$WORK/$1.err" \
    || { cat "$WORK/$1.err"; fail "$1: no line saying where it stopped"; }
  [ ! -e "$3/run.lock" ] || fail "$1: the stopped run left its lock file"
  resume="$(sed 's/.*; resume with: //' "$WORK/$1.err")"
  log "$1: $(cat "$WORK/$1.err")"
}

# 180 training images (200 less the 10% validation split), batches of 32: 6 steps an epoch (the last of 20), 12 in all.
RUN=(train classification --hidden 16 --limit 200 --batch-size 32 --threads 1 --seed 3 --no-tensorboard --epochs 2)

log "uninterrupted run, into a folder with a stale lock file (its process has ended)"
mkdir -p "$WORK/whole"
true & gone=$!
wait "$gone"
printf 'pid %s\nhost %s\nstarted 2020-01-01T00:00:00Z\n' "$gone" "$(hostname)" > "$WORK/whole/run.lock"
"$BIN" "${RUN[@]}" --out "$WORK/whole" > "$WORK/whole.txt"
[ ! -e "$WORK/whole/run.lock" ] || fail "the run left its lock file"

# Into a folder whose name the shell must have quoted: the printed command quotes it too.
log "SIGTERM during step 5 (test hook), then the printed command resumes"
term="$WORK/term run's"
run term env LSTMVISION_TEST_SIGNAL_AT_STEP=5 "$BIN" "${RUN[@]}" --out "$term"
stopped term 5 "$term"
grep -q "(batch 5 of 6 of epoch 1)" "$WORK/term.err" || fail "term: not stopped at batch 5 of epoch 1"
eval "$resume" > "$WORK/term-resumed.txt"
grep -q "^resumed from .* at epoch 1, batch 6 (step 5)" "$WORK/term-resumed.txt" || fail "term: did not resume at 5"
compare "$WORK/whole" "$term"

# The run is held (SIGSTOP) after its first checkpoint while the second starts, then sent SIGTERM and continued.
log "kill -TERM mid-epoch, after the checkpoint of step 2; meanwhile a second run into the same folder"
"$BIN" "${RUN[@]}" --checkpoint-every 2 --out "$WORK/kill" > "$WORK/kill.txt" 2> "$WORK/kill.err" &
job=$!
for _ in $(seq 600); do [ -e "$WORK/kill/last.state.safetensors" ] && break; sleep 0.05; done
kill -STOP "$job"
[ -e "$WORK/kill/last.state.safetensors" ] || fail "kill: no checkpoint was written"
grep -qx "pid $job" "$WORK/kill/run.lock" || fail "kill: the lock file does not hold the run's pid"
run second "$BIN" "${RUN[@]}" --out "$WORK/kill"
[ "$status" -ne 0 ] || fail "the second run into a folder in use was not refused"
grep -q "^lstmvision: error: $WORK/kill is in use by another training run: process $job on .*, started 20" \
  "$WORK/second.err" || { cat "$WORK/second.err"; fail "the refusal does not name the first run"; }
log "second run: $(cat "$WORK/second.err")"
kill -TERM "$job"
kill -CONT "$job"
status=0; wait "$job" || status=$?
[ "$status" -ne 0 ] || fail "kill: the run finished before the signal"
stopped kill "[0-9]*" "$WORK/kill"
eval "$resume" > "$WORK/kill-resumed.txt"
compare "$WORK/whole" "$WORK/kill"

log "a second signal ends the process at once"
run twice env LSTMVISION_TEST_SIGNAL_AT_STEP=3:INT,3 "$BIN" "${RUN[@]}" --checkpoint-every 2 --out "$WORK/twice"
[ "$status" -eq 143 ] || fail "twice: exit status $status, not 143"
[ ! -s "$WORK/twice.err" ] || { cat "$WORK/twice.err"; fail "twice: it did not end at once"; }
[ -e "$WORK/twice/last.state.safetensors" ] || fail "twice: the checkpoint of step 2 is gone"
[ ! -e "$WORK/twice/run.lock" ] || fail "twice: the lock file was left"

if [ "$(id -u)" -ne 0 ]; then
  log "not root: the full-disk check on a tmpfs was not run (SurvivingTests injects the write error)"
  log "passed"
  exit 0
fi
# A tmpfs holding the lock file, one checkpoint (the model, then the state) and one more model file, not a second
# state file: the checkpoint of step 2 is written, that of step 4 fails at its state file.
page=$(getconf PAGESIZE)
pages() { echo $(( ($(stat -c %s "$1") + page - 1) / page )); }
model=$(pages "$WORK/twice/last.safetensors") state=$(pages "$WORK/twice/last.state.safetensors")
[ $((model + 1)) -lt "$state" ] || fail "the state file is too small for this check"
mkdir -p "$WORK/tmpfs"
mount -t tmpfs -o size=$(( (1 + model + state + model + 1) * page )) tmpfs "$WORK/tmpfs"
mounted="$WORK/tmpfs"
log "full disk: a tmpfs of $(( (2 + 2 * model + state) * page / 1024 )) KiB, room for one checkpoint"
run full "$BIN" "${RUN[@]}" --checkpoint-every 2 --out "$WORK/tmpfs/run"
[ "$status" -eq 1 ] || { cat "$WORK/full.err"; fail "full: exit status $status, not 1"; }
state_file="$WORK/tmpfs/run/last.state.safetensors"
[ "$(cat "$WORK/full.err")" = "lstmvision: error: $state_file: write failed: No space left on device; the previous\
 checkpoint $state_file (after step 2) is kept intact; free some space, then resume from it with --resume" ] \
  || { cat "$WORK/full.err"; fail "full: not the one error naming the file and the checkpoint kept"; }
log "full: $(cat "$WORK/full.err")"
! ls -a "$WORK/tmpfs/run" | grep -q "tmp-" || fail "full: a temporary file was left"
[ ! -e "$WORK/tmpfs/run/run.lock" ] || fail "full: the lock file was left"
cp -r "$WORK/tmpfs/run" "$WORK/full"
umount "$WORK/tmpfs"
mounted=""
"$BIN" train classification --resume --threads 1 --out "$WORK/full" > "$WORK/full-resumed.txt"
grep -q "^resumed from .* (step 2)" "$WORK/full-resumed.txt" || fail "full: the kept checkpoint did not resume"
compare "$WORK/whole" "$WORK/full"
log "passed"
