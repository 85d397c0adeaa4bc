#!/bin/sh
# One short fuzzing run for CTest: FUZZER starts from the committed CORPUS (only read) and writes
# new inputs into a fresh WORK folder, crashing inputs into WORK.crash/.
# Usage: short_run.sh FUZZER CORPUS WORK SECONDS
set -eu
fuzzer="$1" corpus="$2" work="$3" seconds="$4"
rm -rf "$work" "$work.crash"
mkdir -p "$work" "$work.crash"
exec "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$work.crash/" "$work" "$corpus"
