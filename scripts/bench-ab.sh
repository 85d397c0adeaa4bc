#!/usr/bin/env bash
# Before against after in one run on one machine: builds the CLI of a git revision beside the
# working tree's, runs the same `krause bench` with each build in turn, and prints every figure of
# both side by side (shared GPUs drift between runs: only figures of one run compare).
#
# Usage: scripts/bench-ab.sh REV [ROUNDS] -- BENCH OPTIONS...
#   e.g. scripts/bench-ab.sh main 2 -- --what op --preset cifar10 --attention krause,sdpa
# REV: any git revision of this repository (the "before"); ROUNDS: alternations, default 2.
# With LibTorch 2.x and CUDA (the torch Python package or $LIBTORCH_DIR) both builds go through
# scripts/build-cuda.sh, else through a CPU build with the system's LibTorch.
# Env: KRAUSE_AB_DIR (work folder, default /tmp/krause-ab), KRAUSE_BUILD_DIR (the working tree's
# build, default build-cuda or build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
rev="$1"; shift
rounds=2
if [ $# -ge 1 ] && [ "$1" != "--" ]; then rounds="$1"; shift; fi
[ $# -ge 1 ] && [ "$1" = "--" ] || usage
shift
fail() { echo "bench-ab: $2" >&2; exit "$1"; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || fail 2 "ROUNDS must be a positive number"
git -C "$root" rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
    fail 2 "'$rev' is no revision of $root"

work="${KRAUSE_AB_DIR:-/tmp/krause-ab}"
base_src="$work/base"
rm -rf "$base_src"
mkdir -p "$base_src"
# The revision's tracked files without the bundled models (the bench needs none).
git -C "$root" archive "$rev" -- . ':!assets/models' | tar -x -C "$base_src"

if python3 -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null ||
    [ -n "${LIBTORCH_DIR:-}" ]; then
    new_build="${KRAUSE_BUILD_DIR:-$root/build-cuda}"
    build() { KRAUSE_BUILD_DIR="$2" "$1/scripts/build-cuda.sh" --target krause; }
else
    new_build="${KRAUSE_BUILD_DIR:-$root/build}"
    build() {  # a build folder configured before keeps its options (the GUI, say)
        if [ ! -f "$2/CMakeCache.txt" ]; then
            cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DKRAUSE_BUILD_GUI=OFF >/dev/null
        fi
        cmake --build "$2" -j"$(nproc)" --target krause
    }
fi
echo "== building $rev in $work/base-build" >&2
build "$base_src" "$work/base-build" > "$work/base-build.log" 2>&1 ||
    { tail -30 "$work/base-build.log" >&2; fail 1 "building $rev failed"; }
echo "== building the working tree in $new_build" >&2
build "$root" "$new_build" > "$work/new-build.log" 2>&1 ||
    { tail -30 "$work/new-build.log" >&2; fail 1 "building the working tree failed"; }

for ((round = 1; round <= rounds; ++round)); do
    for which in before after; do
        bin="$new_build/app/krause"
        [ "$which" = before ] && bin="$work/base-build/app/krause"
        echo "== round $round: $which" >&2
        "$bin" bench "$@" --json > "$work/$which-$round.json" 2> "$work/$which-$round.log" ||
            { tail -5 "$work/$which-$round.log" >&2; fail 1 "the $which bench failed"; }
    done
done

python3 - "$work" "$rounds" "$rev" <<'PY'
import json, sys
work, rounds, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# What a row ran, not what it measured: the same in both builds.
shape = {"B", "H", "T", "D", "W", "K", "parameters", "train_batch", "forward_batch", "sample_batch",
         "sample_tokens_timed", "train_flops_per_image"}
figures = {}  # (part, preset, attention, key) -> {"before": [...], "after": [...]}
device = ""
for which in ("before", "after"):
    for r in range(1, rounds + 1):
        text = open(f"{work}/{which}-{r}.json").read().strip().splitlines()[-1]
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
                    entry.setdefault(which, []).append(value)
                if "error" in row:
                    entry = figures.setdefault((part, row["preset"], row["attention"], "error"), {})
                    entry.setdefault(which, []).append(row["error"][:40])
print(f"device: {device}; before: {rev}; after: the working tree; {rounds} round(s) each, in turn")
fmt = lambda vs: " ".join(f"{v:.4g}" if isinstance(v, (int, float)) else str(v) for v in vs)
rows = [(part, preset, attention, key, fmt(e.get("before", ["-"])), fmt(e.get("after", ["-"])))
        for (part, preset, attention, key), e in sorted(figures.items())]
header = ("part", "preset", "attention", "figure", "before", "after")
widths = [max(len(r[i]) for r in rows + [header]) for i in range(6)]
for r in [header] + rows:
    cells = [f"{c:<{w}}" if i < 4 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))]
    print("  ".join(cells))
PY
