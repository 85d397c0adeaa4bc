#!/usr/bin/env bash
# The test command: installs missing Debian packages, configures, builds, and runs every test.
# Usage: scripts/test.sh [extra cmake -D options]. Env: KRAUSE_DATA_DIR, KRAUSE_BUILD_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KRAUSE_BUILD_DIR:-$root/build}"
jobs="$(nproc)"

source "$root/scripts/packages.sh"
krause_install_packages

krause_export_data_dir "$root"
echo "== real data: ${KRAUSE_DATA_DIR:-none (tests on real data will skip)}"

start=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j"$jobs"
built=$(date +%s)
echo "== build took $((built - start)) s"

cd "$build"
ctest -j"$jobs" --output-on-failure
echo "== tests took $(($(date +%s) - built)) s"
