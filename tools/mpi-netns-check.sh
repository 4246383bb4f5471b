#!/usr/bin/env bash
# Two ranks as two hosts (run as root): network namespaces lv-host1 and lv-host2 joined by a veth pair
# (10.77.0.1 and 10.77.0.2), mpirun in the first, the second's daemon started through `ip netns exec` (the "ssh"
# of this cluster), MPI's TCP transport between them (no shared memory); the run must end with the weights of one
# process computing the same 2 shards, bit for bit. The file system is shared, as a cluster's would be.
# Usage: tools/mpi-netns-check.sh [BIN (an MPI-trait build; default .build/debug/lstmvision)] [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$(realpath "${1:-$repo/.build/debug/lstmvision}")"
WORK="${2:-$(mktemp -d)}"; mkdir -p "$WORK"; WORK="$(realpath "$WORK")"
log() { echo "mpi-netns-check: $*"; }
[ "$(id -u)" -eq 0 ] || { log "needs root (ip netns)"; exit 1; }
cleanup() { ip netns del lv-host1 2>/dev/null || true; ip netns del lv-host2 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add lv-host1
ip netns add lv-host2
ip link add lv-veth1 type veth peer name lv-veth2
ip link set lv-veth1 netns lv-host1
ip link set lv-veth2 netns lv-host2
for i in 1 2; do
  ip -n lv-host$i addr add 10.77.0.$i/24 dev lv-veth$i
  ip -n lv-host$i link set lv-veth$i up
  ip -n lv-host$i link set lo up
done
ip -n lv-host1 neigh show > /dev/null  # (no ping in the image; mpirun below is the connectivity test)
log "lv-host1 (10.77.0.1) and lv-host2 (10.77.0.2) joined by a veth pair"
# mpirun's remote launcher: "AGENT HOST COMMAND…" runs COMMAND in the namespace that owns HOST's address.
cat > "$WORK/netns-agent" <<'AGENT'
#!/bin/sh
host="$1"; shift
echo "$host" >> "$(dirname "$0")/agent.log"
exec ip netns exec "lv-host${host##*.}" sh -c "$*"
AGENT
chmod +x "$WORK/netns-agent"
rm -f "$WORK/agent.log"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$WORK/hosts"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CLS=(train classification --hidden 16 --limit 400 --batch-size 32 --threads 1 --seed 3 --no-tensorboard --epochs 1)
"$BIN" "${CLS[@]}" --out "$WORK/one" --shards 2 > "$WORK/one.txt"
log "mpirun -np 2 over TCP between the namespaces"
ip netns exec lv-host1 mpirun -np 2 --hostfile "$WORK/hosts" --mca plm_rsh_agent "$WORK/netns-agent" \
  --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  "$BIN" "${CLS[@]}" --out "$WORK/two" > "$WORK/two.txt"
grep -ao "epoch 1: .*all-reduce.*" "$WORK/two.txt"
[ "$(cat "$WORK/agent.log")" = "10.77.0.2" ] || { log "FAILED: rank 1 was not started in lv-host2"; exit 1; }
log "rank 1 ran in lv-host2 (started through ip netns exec), rank 0 in lv-host1"
"$BIN" compare-weights "$WORK/one/last.safetensors" "$WORK/two/last.safetensors" --tolerance 0
log "passed"
