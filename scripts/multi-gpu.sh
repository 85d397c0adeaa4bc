#!/usr/bin/env bash
# Data-parallel training on the GPUs of one host, measured: (1) the loss of every step with two
# GPUs and global batch B against one GPU with batch B; (2) training images/s of `krause train`
# on 1, 2, 4... GPUs at a fixed batch per GPU (the median of the logging windows after the first).
# Usage: scripts/multi-gpu.sh [max GPUs, default all]. Needs a CUDA build (scripts/build-cuda.sh),
# torchrun (PyTorch) and KRAUSE_DATA_DIR holding mnist/ and cifar-10/.
# Env: KRAUSE (the krause binary, default build-cuda/app/krause), KRAUSE_RUNS (scratch folder).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
krause="${KRAUSE:-$root/build-cuda/app/krause}"
runs="${KRAUSE_RUNS:-$(mktemp -d)}"
gpus="$(nvidia-smi -L | wc -l)"
max="${1:-$gpus}"
# NVLink multicast stays off: it is not needed for these all-reduces.
export NCCL_NVLS_ENABLE=0
[ -x "$krause" ] || { echo "multi-gpu: no $krause (run scripts/build-cuda.sh first)" >&2; exit 1; }
[ -n "${KRAUSE_DATA_DIR:-}" ] || { echo "multi-gpu: set KRAUSE_DATA_DIR" >&2; exit 1; }
nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1

train() {  # gpus out-folder train-options...
    local n=$1 out=$runs/$2
    shift 2
    if [ "$n" = 1 ]; then
        "$krause" train "$@" --out "$out" >"$out.log" 2>&1
    else
        python3 -m torch.distributed.run --standalone --nproc-per-node "$n" --no-python \
            "$krause" train "$@" --out "$out" >"$out.log" 2>&1
    fi || { echo "multi-gpu: $n GPU run failed, see $out.log" >&2; tail -n 5 "$out.log" >&2; exit 1; }
}

if [ "$max" -ge 2 ]; then
    same=(--preset mnist-tiny --data mnist --batch 16 --steps 30 --dropout 0 --lr 3e-3
          --log-every 1 --eval-every 0 --eval-limit 2000 --preview 0)
    train 1 same-1 "${same[@]}"
    train 2 same-2 "${same[@]}"
    python3 - "$runs" <<'EOF'
import json, sys
def read(path):
    loss, test = {}, None
    for line in open(path):
        j = json.loads(line)
        if "loss" in j: loss[j["step"]] = j["loss"]
        if "test_bpd" in j: test = j["test_bpd"]
    return loss, test
(a, ta), (b, tb) = (read(f"{sys.argv[1]}/same-{n}/metrics.jsonl") for n in (1, 2))
worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
print(f"1 vs 2 GPUs, global batch 16, {len(a)} steps: largest relative loss difference {worst:.2e}; "
      f"test bits/dim {ta:.5f} vs {tb:.5f}")
EOF
fi

for preset in cifar10 mnist; do
    if [ $preset = cifar10 ]; then per_gpu=32 steps=50 T=3072; else per_gpu=64 steps=120 T=784; fi
    for n in 1 2 4 8; do
        [ "$n" -le "$max" ] || break
        train "$n" "$preset-$n" --preset $preset --data $preset --batch $((per_gpu * n)) \
            --steps $steps --log-every 10 --eval-every 0 --eval-limit 64 --preview 0
        python3 - "$runs/$preset-$n/metrics.jsonl" "$preset" "$n" "$per_gpu" "$T" <<'EOF'
import json, statistics, sys
path, preset, n, per_gpu, T = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rates = [j["tokens_per_s"] / T for j in map(json.loads, open(path)) if "tokens_per_s" in j][1:]
print(f"{preset:8s} {n} GPU(s)  batch {per_gpu * n:4d}  {statistics.median(rates):8.1f} images/s")
EOF
    done
done
echo "runs: $runs"
