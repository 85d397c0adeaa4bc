#!/usr/bin/env bash
# Fuzzes every file reader (IDX, CIFAR-10, gzip, safetensors, model/train config JSON,
# checkpoints, PNG prompts) with libFuzzer + ASan + UBSan, and keeps new interesting inputs,
# minimized, in the regression corpus tests/fuzz_corpus/<target>/ (which CTest replays).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [--long] [--targets a,b,...]
#   SECONDS_PER_TARGET  time per target (default 10; with --long it is the upper bound, default
#                       none)
#   --long              run each target for 1,000,000 executions, two targets at a time
#   --targets LIST      only these targets (names as in tests/fuzz/: fuzz_idx, fuzz_gzip, ...)
# Env: KRAUSE_FUZZ_BUILD_DIR (default build-fuzz/), KRAUSE_FUZZ_JOBS (targets run at once),
#      KRAUSE_FUZZ_RUNS (executions per target with --long), KRAUSE_JOBS (build jobs).
# Prints executions and crashes per target; exits non-zero when any target crashed (the crashing
# inputs are in BUILD/artifacts/<target>/; reproduce with BUILD/<target> FILE).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KRAUSE_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds=""
long=0
only=""
while (($#)); do
    case "$1" in
        --long) long=1 ;;
        --targets) only="${2:?--targets needs a list}"; shift ;;
        --targets=*) only="${1#*=}" ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *[!0-9]*|"") echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        *) seconds="$1" ;;
    esac
    shift
done
if ((long)); then
    runs="${KRAUSE_FUZZ_RUNS:-1000000}"
    seconds="${seconds:-0}"
    parallel="${KRAUSE_FUZZ_JOBS:-2}"
else
    runs=-1
    seconds="${seconds:-10}"
    parallel="${KRAUSE_FUZZ_JOBS:-1}"
fi
corpus_cap=$((256 * 1024))  # bytes per target kept in tests/fuzz_corpus
file_cap=$((16 * 1024))     # larger new inputs are not kept

# clang with the libFuzzer runtime (Debian 12: clang 14 and libclang-rt-14-dev).
have_libfuzzer() {
    command -v clang++ >/dev/null &&
        echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
        clang++ -fsanitize=fuzzer -x c++ - -o /dev/null 2>/dev/null
}
if ! have_libfuzzer; then
    echo "== installing clang and the libFuzzer runtime"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-rt-14-dev
    have_libfuzzer || { echo "fuzz.sh: clang++ -fsanitize=fuzzer still does not link" >&2; exit 1; }
fi

jobs="${KRAUSE_JOBS:-$(nproc)}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache)"); fi
# The full path, as the test suite's build of the same project (build/tests/fuzz) uses it.
cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$(command -v clang++)" \
    "${launcher[@]}" >/dev/null
mapfile -t targets < "$build/targets.txt"
if [ -n "$only" ]; then IFS=, read -r -a targets <<< "$only"; fi
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# LibTorch keeps allocations until exit that LeakSanitizer would report; everything else aborts.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

corpus_bytes() { find "$1" -maxdepth 1 -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

fuzz_one() {
    local t="$1"
    local corpus="$root/tests/fuzz_corpus/$t" work="$build/work/$t" art="$build/artifacts/$t"
    local log="$build/logs/$t.log"
    rm -rf "$work"
    mkdir -p "$corpus" "$work" "$art" "$build/logs"
    if [ -z "$(ls -A "$corpus")" ]; then
        KRAUSE_FUZZ_SEEDS="$corpus" "$build/$t" >/dev/null 2>&1
    fi
    local before
    before="$(ls "$corpus" | sort)"
    local limits=(-max_total_time="$seconds")
    if ((runs > 0)); then limits+=(-runs="$runs"); fi
    # New inputs go to the scratch corpus first; the committed corpus is only read.
    set +e
    nice -n 10 "$build/$t" "${limits[@]}" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$art/" "$work" "$corpus" >"$log" 2>&1
    local rc=$?
    set -e
    # The corpus becomes the named files (seeds and regression inputs, always kept) plus the
    # inputs, old and new, that libFuzzer's merge finds adding a coverage edge beyond them
    # (-use_counters=0: hit counts alone do not count, which keeps the corpus small).
    local min="$build/min/$t"
    rm -rf "$min"
    mkdir -p "$min"
    find "$corpus" -maxdepth 1 -type f -regextype egrep ! -regex '.*/[0-9a-f]{40}' \
        -exec cp {} "$min"/ \;
    if nice -n 10 "$build/$t" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=30 "$min" \
        "$corpus" "$work" >>"$log" 2>&1; then
        find "$corpus" -maxdepth 1 -type f -regextype egrep -regex '.*/[0-9a-f]{40}' -delete
        cp -n "$min"/* "$corpus"/ 2>/dev/null || true
    fi
    # New files, largest first: drop those over file_cap, then the largest until the corpus fits.
    local total size f
    total=$(corpus_bytes "$corpus")
    while read -r size f; do
        [ -n "$f" ] || continue
        if ((size > file_cap || total > corpus_cap)); then
            rm -f "$corpus/$f"
            total=$((total - size))
        fi
    done < <(cd "$corpus" && comm -13 <(echo "$before") <(ls | sort) |
             xargs -r stat -c '%s %n' -- | sort -rn)
    local execs rate crashes slow added
    execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)"
    # Slow inputs (over 10 s) are kept in the artifacts too, but only as a warning.
    crashes="$(find "$art" -type f ! -name 'slow-unit-*' | wc -l)"
    slow="$(find "$art" -type f -name 'slow-unit-*' | wc -l)"
    added="$(comm -13 <(echo "$before") <(ls "$corpus" | sort) | grep -c . || true)"
    if ((rc != 0 && crashes == 0)); then crashes=1; fi
    printf '%-18s executions %9s  exec/s %6s  crashes %d  slow %d  corpus +%d (%d files, %d bytes)  exit %d\n' \
        "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$slow" "$added" "$(ls "$corpus" | wc -l)" \
        "$(corpus_bytes "$corpus")" "$rc" >"$build/logs/$t.summary"
    cat "$build/logs/$t.summary"
    if ((crashes > 0)); then
        grep -E 'ERROR|SUMMARY|runtime error|undocumented|Test unit written' "$log" | head -5 || true
    fi
}

rm -f "$build"/logs/*.summary "$build"/artifacts/*/* 2>/dev/null || true
echo "== fuzzing ${#targets[@]} targets: $( ((long)) && echo "$runs executions" ||
    echo "$seconds s") each, $parallel at a time"
running=0
for t in "${targets[@]}"; do
    fuzz_one "$t" &
    running=$((running + 1))
    if ((running >= parallel)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

echo "== summary (logs in $build/logs)"
failed=0
for t in "${targets[@]}"; do
    if [ -f "$build/logs/$t.summary" ]; then
        cat "$build/logs/$t.summary"
        grep -q ' crashes 0 ' "$build/logs/$t.summary" || failed=1
    else
        echo "$t: did not finish"
        failed=1
    fi
done
exit "$failed"
