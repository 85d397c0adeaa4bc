#!/usr/bin/env bash
# Soak test of krause-studio: N cycles of sample / inspect / compare under Xvfb on two untrained
# mnist-tiny models; fails when resident memory over the last 20 cycles (their median) is more
# than 10% above its value after cycle 20 (the caches are warm by then).
# Usage: scripts/studio-soak.sh [CYCLES (default 300)] [OUT_DIR]. Env: KRAUSE_BUILD_DIR.
# On an ASan build, keep ASan's quarantine of freed memory small (scripts/sanitize.sh sets
# quarantine_size_mb=32): the default one is still filling after 60 cycles, which reads as growth.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KRAUSE_BUILD_DIR:-$root/build}"
cycles="${1:-300}"
out="${2:-$build/soak}"
baseline=$((cycles < 40 ? cycles / 2 : 20))

for tool in xvfb-run xauth; do
    command -v "$tool" >/dev/null || { echo "studio-soak: $tool is not installed" >&2; exit 77; }
done
rm -rf "$out"
mkdir -p "$out/models" "$out/config"
for kind in krause softmax; do
    "$build/app/krause" init --preset mnist-tiny --attention "$kind" \
        --out "$out/models/$kind.safetensors" >/dev/null
done

script="$out/soak.txt"
{
    echo "open $out/models/krause.safetensors"
    echo "open-compare $out/models/softmax.safetensors"
    echo "set sample.count 2"
    echo "set sample.speed 0"
    echo "set compare.count 2"
    for ((i = 1; i <= cycles; i++)); do
        echo "tab sample"
        echo "set sample.seed $i"
        echo "sample"
        echo "wait sample 300"
        echo "click sample $((i % 2)) $((1 + i % 27)) $(((i * 7) % 28))"
        echo "wait inspect 300"
        echo "tab inspect"
        echo "frames 2"
        echo "tab compare"
        echo "compare-sample"
        echo "wait compare-sample 300"
        echo "screenshot cycle-$i"
    done
    echo "quit"
} >"$script"

start=$(date +%s)
XDG_CONFIG_HOME="$out/config" xvfb-run -a -s "-screen 0 1280x720x24" \
    "$build/app/krause-studio" --script "$script" --screenshots "$out/shots" --shots named \
    --width 1280 --height 720
seconds=$(($(date +%s) - start))

rss_of() {  # the resident memory (KiB) in the dump of cycle $1
    local file
    file=$(ls "$out"/shots/*-cycle-"$1".json)
    grep -oE '"rss_kib": [0-9]+' "$file" | grep -oE '[0-9]+$'
}
base=$(rss_of "$baseline")
# The allocator's caches make single readings swing by several percent between cycles, so the
# test compares the median of the last 20 cycles (a trend) with the reading after the baseline.
tail_from=$((cycles - 19 > baseline ? cycles - 19 : baseline))
peak=0
tail_values=()
for ((i = baseline; i <= cycles; i++)); do
    r=$(rss_of "$i")
    ((r > peak)) && peak=$r
    ((i >= tail_from)) && tail_values+=("$r")
done
median=$(printf '%s\n' "${tail_values[@]}" | sort -n | sed -n "$(((${#tail_values[@]} + 1) / 2))p")
growth=$(((median - base) * 1000 / base))
peak_growth=$(((peak - base) * 1000 / base))
echo "studio-soak: $cycles cycles in ${seconds}s; resident memory after cycle $baseline:" \
    "$((base / 1024)) MiB; median of cycles $tail_from-$cycles: $((median / 1024)) MiB" \
    "(${growth}/1000 of the baseline above it); peak since: $((peak / 1024)) MiB" \
    "(${peak_growth}/1000 above)"
# Every cycle's figure, for plotting.
for ((i = 1; i <= cycles; i++)); do echo "$i $(rss_of "$i")"; done >"$out/rss_kib.txt"
if ((growth > 100)); then
    echo "studio-soak: resident memory grew by more than 10%" >&2
    exit 1
fi
