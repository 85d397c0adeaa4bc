#!/usr/bin/env bash
# Attention kinds at equal training time: trains each kind with `krause train --minutes MINUTES`
# (which times the model's steps and takes the steps that fill the time, so the learning-rate
# schedule spans the whole run), and prints per kind the timed speed, the steps, the wall time and
# the test bits per dimension (over T and over the T-1 predicted sub-pixels) that training reports
# at its end.
#
# Usage: scripts/equal-time.sh MINUTES OUT_DIR -- TRAIN OPTIONS...
#   e.g. scripts/equal-time.sh 12 runs/equal -- --preset mnist --data mnist --batch 64 \
#            --lr 2e-3 --dropout 0.1 --eval-every 0 --eval-limit 0 --preview 0
# TRAIN OPTIONS go to every `krause train` (leave out --attention, --minutes, --steps, --epochs
# and --out). --eval-limit 0 evaluates on the whole test set. Env: KRAUSE (the CLI; default
# build-cuda/app/krause, else build/app/krause), KRAUSE_ATTENTIONS (default "krause softmax"),
# KRAUSE_GPUS (e.g. "0,1": with a GPU per kind, each kind trains alone on its GPU, all at once;
# with fewer GPUs than kinds, one kind after another).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '8,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
fail() { echo "equal-time: $1" >&2; exit "${2:-1}"; }
[ $# -ge 3 ] && [ "$3" = "--" ] || usage
minutes="$1"
out="$2"
shift 3
[[ "$minutes" =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v m="$minutes" 'BEGIN { exit !(m > 0) }' ||
    fail "MINUTES must be a positive number, got '$minutes'" 2

krause="${KRAUSE:-}"
if [ -z "$krause" ]; then
    krause="$root/build-cuda/app/krause"
    [ -x "$krause" ] || krause="$root/build/app/krause"
fi
[ -x "$krause" ] || fail "no krause CLI at $krause: build it first (scripts/test.sh or scripts/build-cuda.sh)"

for arg in "$@"; do
    case "$arg" in
        --attention | --minutes | --steps | --epochs | --out | --attention=* | --minutes=* | \
            --steps=* | --epochs=* | --out=*)
            fail "${arg%%=*} is set by this script" 2 ;;
    esac
done

mkdir -p "$out"
read -r -a kinds <<< "${KRAUSE_ATTENTIONS:-krause softmax}"
IFS=, read -r -a gpus <<< "${KRAUSE_GPUS:-}"

# run_kind KIND TRAIN OPTIONS...: trains one kind for MINUTES and records the run in
# $out/KIND.run (kind, start, end).
run_kind() {
    local kind="$1" start end
    shift
    rm -f "$out/$kind.run"
    echo "== $kind: $minutes minutes of training" >&2
    start=$(date +%s.%N)
    "$krause" train "$@" --attention "$kind" --minutes "$minutes" --out "$out/$kind" \
        > "$out/$kind-train.log" 2>&1 ||
        { tail -5 "$out/$kind-train.log" >&2; fail "training $kind failed"; }
    end=$(date +%s.%N)
    echo "$kind $start $end" > "$out/$kind.run"
}

if [ "${#gpus[@]}" -ge "${#kinds[@]}" ]; then
    pids=()
    for i in "${!kinds[@]}"; do
        echo "== ${kinds[$i]} on GPU ${gpus[$i]}" >&2
        CUDA_VISIBLE_DEVICES="${gpus[$i]}" run_kind "${kinds[$i]}" "$@" &
        pids+=($!)
    done
    failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ "$failed" = 0 ] || fail "a run failed (see the logs in $out)"
else
    [ -z "${KRAUSE_GPUS:-}" ] ||
        echo "equal-time: KRAUSE_GPUS names fewer GPUs than kinds: one kind after another" >&2
    for kind in "${kinds[@]}"; do run_kind "$kind" "$@"; done
fi
for kind in "${kinds[@]}"; do cat "$out/$kind.run"; done > "$out/runs.txt"

python3 - "$out" "$minutes" <<'PY'
import json, sys
out, minutes = sys.argv[1], float(sys.argv[2])
rows = []
for line in open(f"{out}/runs.txt"):
    kind, start, end = line.split()
    timing = final = None
    for text in open(f"{out}/{kind}/metrics.jsonl"):
        record = json.loads(text)
        if record.get("event") == "steps from the time budget":
            timing = record
        if "test_bpd" in record:
            final = record
    if timing is None or final is None:
        sys.exit(f"equal-time: {kind} reported no timed steps or no test bits/dim "
                 f"(see {out}/{kind}/metrics.jsonl)")
    rows.append({"attention": kind, "images_per_s": timing["batch"] / timing["seconds_per_step"],
                 "batch": timing["batch"], "steps": timing["steps"],
                 "wall_s": float(end) - float(start), "test_bpd": final["test_bpd"],
                 "test_bpd_predicted": final["test_bpd_predicted"],
                 "test_images": final["test_images"]})
json.dump({"minutes": minutes, "runs": rows}, open(f"{out}/summary.json", "w"), indent=1)
print(f"{minutes:g} minutes of training each; bits/dim on {rows[0]['test_images']} test images")
print(f"{'attention':<10} {'images/s':>9} {'steps':>7} {'wall s':>8} {'bpd (T)':>9} {'bpd (T-1)':>10}")
for r in rows:
    print(f"{r['attention']:<10} {r['images_per_s']:>9.1f} {r['steps']:>7} {r['wall_s']:>8.1f} "
          f"{r['test_bpd']:>9.4f} {r['test_bpd_predicted']:>10.4f}")
PY
