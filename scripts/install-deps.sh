#!/usr/bin/env bash
# Installs the Debian packages LSTMVision builds against, when they are missing (sudo when not root).
set -euo pipefail
# Open MPI (libopenmpi-dev, openmpi-bin): only for builds with the MPI trait and `make test`'s tools/mpi-check.sh.
packages=(pkg-config libopenblas-dev zlib1g-dev libpng-dev libjpeg-dev libwebp-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
