#!/usr/bin/env bash
# Attention kinds at equal training time: measures each model's training speed with `krause
# bench`, trains each for the optimiser steps that fill MINUTES at that speed (the learning-rate
# schedule then spans the whole run), and prints per kind the steps, the wall time and the test
# bits per dimension (over T and over the T-1 predicted sub-pixels) that training reports at its
# end.
#
# Usage: scripts/equal-time.sh MINUTES OUT_DIR -- TRAIN OPTIONS...
#   e.g. scripts/equal-time.sh 12 runs/equal -- --preset mnist --data mnist --batch 64 \
#            --lr 2e-3 --dropout 0.1 --eval-every 0 --eval-limit 0 --preview 0
# TRAIN OPTIONS go to every `krause train` (leave out --attention, --steps, --epochs and --out);
# their --preset and --batch also set what the bench measures. --eval-limit 0 evaluates on the
# whole test set. Env: KRAUSE (the CLI; default build-cuda/app/krause, else build/app/krause),
# KRAUSE_ATTENTIONS (default "krause softmax"), KRAUSE_GPUS (e.g. "0,1": with a GPU per kind, the
# kinds are benched and trained at once, each alone on its GPU; otherwise one after another).
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

preset=""
batch=""
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
    case "${args[$i]}" in
        --attention | --steps | --epochs | --out | --attention=* | --steps=* | --epochs=* | --out=*)
            fail "${args[$i]%%=*} is set by this script" 2 ;;
        --preset) preset="${args[$((i + 1))]:-}" ;;
        --preset=*) preset="${args[$i]#--preset=}" ;;
        --batch) batch="${args[$((i + 1))]:-}" ;;
        --batch=*) batch="${args[$i]#--batch=}" ;;
    esac
done
[ -n "$preset" ] || fail "name the model with --preset" 2

mkdir -p "$out"
read -r -a kinds <<< "${KRAUSE_ATTENTIONS:-krause softmax}"
IFS=, read -r -a gpus <<< "${KRAUSE_GPUS:-}"

# run_kind KIND TRAIN OPTIONS...: benches one kind, trains it for the steps that fill MINUTES and
# records the run in $out/KIND.run (kind, images/s, batch, steps, start, end).
run_kind() {
    local kind="$1" rate used steps start end
    shift
    rm -f "$out/$kind.run"
    echo "== $kind: training speed" >&2
    local bench=("$krause" bench --what train --preset "$preset" --attention "$kind" --repeats 3
                 --warmup 2 --json)
    [ -n "$batch" ] && bench+=(--batch "$batch")
    "${bench[@]}" > "$out/$kind-bench.json" 2> "$out/$kind-bench.log" ||
        { tail -5 "$out/$kind-bench.log" >&2; fail "the bench of $kind failed"; }
    read -r rate used steps < <(python3 - "$out/$kind-bench.json" "$minutes" <<'PY' || true
import json, sys
row = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["models"][0]
if "error" in row or "train_images_per_s" not in row:
    sys.exit(f"equal-time: the bench measured no training speed: {row.get('error', row)}")
rate, batch = row["train_images_per_s"], row["train_batch"]
print(f"{rate:.6g} {batch} {max(1, int(float(sys.argv[2]) * 60 * rate / batch))}")
PY
    )
    [ -n "$steps" ] || fail "the bench of $kind gave no training speed"
    echo "== $kind: $rate images/s at batch $used: $steps steps" >&2
    local train=("$krause" train "$@" --attention "$kind" --steps "$steps" --out "$out/$kind")
    [ -n "$batch" ] || train+=(--batch "$used")
    start=$(date +%s.%N)
    "${train[@]}" > "$out/$kind-train.log" 2>&1 ||
        { tail -5 "$out/$kind-train.log" >&2; fail "training $kind failed"; }
    end=$(date +%s.%N)
    echo "$kind $rate $used $steps $start $end" > "$out/$kind.run"
}

if [ "${#gpus[@]}" -ge "${#kinds[@]}" ] && [ "${#kinds[@]}" -gt 1 ]; then
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
    kind, rate, batch, steps, start, end = line.split()
    final = None
    for text in open(f"{out}/{kind}/metrics.jsonl"):
        record = json.loads(text)
        if "test_bpd" in record:
            final = record
    if final is None:
        sys.exit(f"equal-time: {kind} reported no test bits/dim (see {out}/{kind}/metrics.jsonl)")
    rows.append({"attention": kind, "images_per_s": float(rate), "batch": int(batch),
                 "steps": int(steps), "wall_s": float(end) - float(start),
                 "test_bpd": final["test_bpd"], "test_bpd_predicted": final["test_bpd_predicted"],
                 "test_images": final["test_images"]})
json.dump({"minutes": minutes, "runs": rows}, open(f"{out}/summary.json", "w"), indent=1)
print(f"{minutes:g} minutes of training each; bits/dim on {rows[0]['test_images']} test images")
print(f"{'attention':<10} {'images/s':>9} {'steps':>7} {'wall s':>8} {'bpd (T)':>9} {'bpd (T-1)':>10}")
for r in rows:
    print(f"{r['attention']:<10} {r['images_per_s']:>9.1f} {r['steps']:>7} {r['wall_s']:>8.1f} "
          f"{r['test_bpd']:>9.4f} {r['test_bpd_predicted']:>10.4f}")
PY
