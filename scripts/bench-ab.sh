#!/usr/bin/env bash
# Before against after in one run on one machine: builds the CLI of one or more git revisions
# beside the working tree's (all at once), runs the same `krause bench` with each build in turn,
# and prints every figure of all of them side by side (shared GPUs drift between runs: only
# figures of one run compare).
#
# Usage: scripts/bench-ab.sh REV[,REV...] [ROUNDS] -- BENCH OPTIONS...
#   e.g. scripts/bench-ab.sh main 2 -- --what op --preset cifar10 --attention krause,sdpa
#        scripts/bench-ab.sh main~2,main 3 -- --what op    (two befores and the working tree)
#        scripts/bench-ab.sh a.patch,b.patch 3 -- --what op  (the working tree with each patch)
# REV: git revisions of this repository, or patch files (a diff the working tree takes with
# patch -p1, e.g. from git diff), each a build beside the working tree's; ROUNDS: alternations,
# default 2. With LibTorch 2.x and CUDA (the torch Python package or $LIBTORCH_DIR) the builds go
# through scripts/build-cuda.sh, else through a CPU build with the system's LibTorch.
# Env: KRAUSE_AB_DIR (work folder, default /tmp/krause-ab), KRAUSE_BUILD_DIR (the working tree's
# build, default build-cuda or build), KRAUSE_AB_TESTS (a GoogleTest filter, e.g. 'Cuda*': every
# build also builds krause_tests and runs those tests before any timing; a failure stops it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '7,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
IFS=, read -r -a revs <<< "$1"
shift
rounds=2
if [ $# -ge 1 ] && [ "$1" != "--" ]; then rounds="$1"; shift; fi
[ $# -ge 1 ] && [ "$1" = "--" ] || usage
shift
fail() { echo "bench-ab: $2" >&2; exit "$1"; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || fail 2 "ROUNDS must be a positive number"
[ ${#revs[@]} -ge 1 ] || usage
for rev in "${revs[@]}"; do
    [[ "$rev" == *.patch && -f "$rev" ]] ||
        git -C "$root" rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
        fail 2 "'$rev' is neither a revision of $root nor a patch file"
done
tests="${KRAUSE_AB_TESTS:-}"
targets=(--target krause)
if [ -n "$tests" ]; then targets+=(krause_tests); fi

work="${KRAUSE_AB_DIR:-/tmp/krause-ab}"
mkdir -p "$work"

if python3 -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null ||
    [ -n "${LIBTORCH_DIR:-}" ]; then
    new_build="${KRAUSE_BUILD_DIR:-$root/build-cuda}"
    build() { KRAUSE_BUILD_DIR="$2" "$1/scripts/build-cuda.sh" "${targets[@]}"; }
else
    new_build="${KRAUSE_BUILD_DIR:-$root/build}"
    build() {  # a build folder configured before keeps its options (the GUI, say)
        if [ ! -f "$2/CMakeCache.txt" ]; then
            cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DKRAUSE_BUILD_GUI=OFF >/dev/null
        fi
        cmake --build "$2" -j"$(nproc)" "${targets[@]}"
    }
fi

# The working tree's files without the bundled models: git's tracked and untracked ones that it
# does not ignore, or, where there is no git repository, all but build and run folders.
copy_working_tree() {
    if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$root" ls-files -z -co --exclude-standard -- . ':!assets/models' |
            tar -C "$root" --null --ignore-failed-read -T - -cf - | tar -x -C "$1"
    else
        tar -C "$root" --exclude='./build*' --exclude=./runs --exclude=./assets/models -cf - . |
            tar -x -C "$1"
    fi
}

# Build n (0 ..) is revision n, the last one the working tree; all build at once.
names=()
bins=()
logs=()
pids=()
start_build() {  # NAME SOURCE BUILD_DIR LOG
    echo "== building $1 in $3" >&2
    build "$2" "$3" > "$4" 2>&1 &
    pids+=($!)
    names+=("$1")
    bins+=("$3/app/krause")
    logs+=("$4")
}
for i in "${!revs[@]}"; do
    src="$work/rev$i"
    rm -rf "$src"
    mkdir -p "$src"
    if [[ "${revs[$i]}" == *.patch ]]; then
        copy_working_tree "$src"
        patch -d "$src" -p1 -s < "$(realpath "${revs[$i]}")" ||
            fail 1 "${revs[$i]} does not apply to the working tree"
    else
        # The revision's tracked files without the bundled models (the bench needs none).
        git -C "$root" archive "${revs[$i]}" -- . ':!assets/models' | tar -x -C "$src"
    fi
    start_build "${revs[$i]}" "$src" "$work/rev$i-build" "$work/rev$i-build.log"
done
start_build "working tree" "$root" "$new_build" "$work/new-build.log"
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        tail -30 "${logs[$i]}" >&2
        echo "bench-ab: building ${names[$i]} failed" >&2
        failed=1
    fi
done
[ "$failed" = 0 ] || exit 1

if [ -n "$tests" ]; then
    for i in "${!bins[@]}"; do
        echo "== tests of ${names[$i]}: $tests" >&2
        log="$work/build$i-tests.log"
        if ! "$(dirname "${bins[$i]}")/../tests/krause_tests" --gtest_filter="$tests" >"$log" 2>&1
        then
            grep -E '^\[  FAILED' "$log" >&2 || tail -5 "$log" >&2
            fail 1 "the tests of ${names[$i]} failed"
        fi
        grep -E '^\[  PASSED' "$log" >&2
    done
fi

for ((round = 1; round <= rounds; ++round)); do
    for i in "${!bins[@]}"; do
        echo "== round $round: ${names[$i]}" >&2
        "${bins[$i]}" bench "$@" --json > "$work/build$i-$round.json" 2> "$work/build$i-$round.log" ||
            { tail -5 "$work/build$i-$round.log" >&2; fail 1 "the bench of ${names[$i]} failed"; }
    done
done

python3 - "$work" "$rounds" "${names[@]}" <<'PY'
import json, sys
work, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
# What a row ran, not what it measured: the same in every build.
shape = {"B", "H", "T", "D", "W", "K", "parameters", "train_batch", "forward_batch", "sample_batch",
         "sample_tokens_timed", "train_flops_per_image"}
figures = {}  # (part, preset, attention, key) -> {build: [one value per round]}
device = ""
for build in range(len(names)):
    for r in range(1, rounds + 1):
        text = open(f"{work}/build{build}-{r}.json").read().strip().splitlines()[-1]
        result = json.loads(text)
        device = result.get("device", device)
        for part in ("models", "ops"):
            for row in result.get(part, []):
                for key, value in row.items():
                    if key in ("preset", "attention", "error") or key in shape:
                        continue
                    if isinstance(value, (str, bool)):
                        continue
                    entry = figures.setdefault((part, row["preset"], row["attention"], key), {})
                    entry.setdefault(build, []).append(value)
                if "error" in row:
                    entry = figures.setdefault((part, row["preset"], row["attention"], "error"), {})
                    entry.setdefault(build, []).append(row["error"][:40])
print(f"device: {device}; builds: {', '.join(names)}; {rounds} round(s) each, in turn")
fmt = lambda vs: " ".join(f"{v:.4g}" if isinstance(v, (int, float)) else str(v) for v in vs)
rows = [(part, preset, attention, key) + tuple(fmt(e.get(b, ["-"])) for b in range(len(names)))
        for (part, preset, attention, key), e in sorted(figures.items())]
header = ("part", "preset", "attention", "figure") + tuple(names)
widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
for r in [header] + rows:
    cells = [f"{c:<{w}}" if i < 4 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))]
    print("  ".join(cells))
PY
