#!/usr/bin/env bash
# The test command: installs missing Debian packages, configures, builds, and runs every test.
# Usage: scripts/test.sh [extra cmake -D options]. Env: KRAUSE_DATA_DIR, KRAUSE_BUILD_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KRAUSE_BUILD_DIR:-$root/build}"
jobs="$(nproc)"

packages=(cmake g++ make pkg-config libtorch-dev libfmt-dev libstb-dev libcli11-dev
          nlohmann-json3-dev zlib1g-dev libgtest-dev libimgui-dev libglfw3-dev libgl-dev
          xvfb xauth curl ccache dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

if [ -z "${KRAUSE_DATA_DIR:-}" ] && [ -d "$root/../shared/data" ]; then
    export KRAUSE_DATA_DIR="$(cd "$root/../shared/data" && pwd)"
fi
echo "== real data: ${KRAUSE_DATA_DIR:-none (tests on real data will skip)}"

start=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j"$jobs"
built=$(date +%s)
echo "== build took $((built - start)) s"

cd "$build"
ctest -j"$jobs" --output-on-failure
echo "== tests took $(($(date +%s) - built)) s"
