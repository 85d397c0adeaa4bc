#!/usr/bin/env bash
# Crash-safety drill for `krause train`: SIGKILLs a run that checkpoints every step at random
# moments (many of them during a checkpoint write), N times; after every kill the newest
# checkpoint must load (`krause eval --checkpoint ... --limit 2`), its step must not go back, and
# the next run resumes from it. Then a full disk during a checkpoint write (a file size limit,
# `ulimit -f`, with SIGXFSZ ignored): the run must fail naming the file and leave the previous
# checkpoint byte for byte. Runs on generated fake MNIST IDX data; needs no network or real data.
#
# Usage: scripts/kill-test.sh [KILLS]     (default 50)
# The first run is killed only after its first checkpoint (so there is one to resume); later
# runs are killed, in turn, at a random moment between 0.1 s and twice the time the first run
# needed to write its first checkpoint (start-up plus one step; or within [KRAUSE_KILL_MIN,
# KRAUSE_KILL_MAX] seconds when those are set), and within 2 ms of the run starting to write a
# checkpoint (its "checkpoint.safetensors.tmp.PID" appearing).
# Env: KRAUSE_BIN (default $KRAUSE_BUILD_DIR/app/krause, else build/app/krause), KRAUSE_KILL_MIN,
#      KRAUSE_KILL_MAX, KRAUSE_KILL_DIR (work folder, default a fresh mktemp, removed after a pass).
# Exits non-zero on the first violation.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kills="${1:-50}"
bin="${KRAUSE_BIN:-${KRAUSE_BUILD_DIR:-$root/build}/app/krause}"
kill_min="${KRAUSE_KILL_MIN:-0.1}"
kill_max="${KRAUSE_KILL_MAX:-}"
work="${KRAUSE_KILL_DIR:-$(mktemp -d /tmp/krause-kill.XXXXXX)}"
[ -x "$bin" ] || { echo "kill-test: no krause binary at $bin (build first, or set KRAUSE_BIN)" >&2; exit 2; }

fail() { echo "kill-test: FAIL: $*" >&2; exit 1; }
count_tmp() { if [ -d "$run" ]; then find "$run" -name '*.tmp.*' | wc -l; else echo 0; fi; }
random_between() { awk -v a="$1" -v b="$2" -v s="$RANDOM$3" 'BEGIN { srand(s); printf "%.3f", a + rand() * (b - a) }'; }
# A sleep without starting a process (the external sleep alone takes milliseconds).
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }

# Fake MNIST in IDX format: n images of 28x28 with a bright square, labels i % 10.
write_idx() {  # dir prefix n
    local dir="$1" prefix="$2" n="$3" i
    {
        printf '\x00\x00\x08\x03'; printf "\\x$(printf %02x $((n >> 24 & 255)))\\x$(printf %02x $((n >> 16 & 255)))\\x$(printf %02x $((n >> 8 & 255)))\\x$(printf %02x $((n & 255)))"
        printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'
        for ((i = 0; i < n; i++)); do
            head -c $((28 * 10 + (i % 9) * 28)) /dev/zero
            for ((r = 0; r < 8; r++)); do head -c 10 /dev/zero; printf '\xff%.0s' {1..8}; head -c 10 /dev/zero; done
            head -c $((28 * 28 - 28 * 10 - (i % 9) * 28 - 8 * 28)) /dev/zero
        done
    } > "$dir/$prefix-images-idx3-ubyte"
    {
        printf '\x00\x00\x08\x01'; printf "\\x$(printf %02x $((n >> 24 & 255)))\\x$(printf %02x $((n >> 16 & 255)))\\x$(printf %02x $((n >> 8 & 255)))\\x$(printf %02x $((n & 255)))"
        for ((i = 0; i < n; i++)); do printf "\\x$(printf %02x $((i % 10)))"; done
    } > "$dir/$prefix-labels-idx1-ubyte"
}

data="$work/data"
run="$work/run"
ckpt="$run/checkpoint.safetensors"
mkdir -p "$data"
rm -rf "$run"
write_idx "$data" train 32
write_idx "$data" t10k 8
train_args=(--preset mnist-tiny --data "mnist:$data" --steps 1000000 --batch 4 --checkpoint-every 1
            --log-every 1 --preview 0 --eval-every 0 --eval-limit 2 --threads 1 --out "$run")

step_of() {  # the step stored in a checkpoint, read by `krause eval` of the file itself
    "$bin" eval --checkpoint "$1" --data "mnist:$data" --limit 2 --json >"$work/eval.json" \
        2>"$work/eval.err" || return 1
    # The step is in the header's metadata: "step":"N".
    head -c 65536 "$1" | tr -d '\0' | grep -ao '"step":"[0-9]*"' | head -1 | grep -o '[0-9]*'
}

echo "== kill-test: $kills kills of krause train (checkpoint every step), work folder $work"
start=$(date +%s)
last=0
during_write=0
no_checkpoint_yet=0
advanced=0  # kills after which the checkpoint was newer than before: the run had resumed
for ((k = 1; k <= kills; k++)); do
    if [ -f "$ckpt" ]; then
        args=(train --resume "$ckpt" --out "$run")
    else
        args=(train "${train_args[@]}")
    fi
    tmp_before=$(count_tmp)
    "$bin" "${args[@]}" >"$work/train.out" 2>"$work/train.err" &
    pid=$!
    when=""
    if [ -z "$kill_max" ]; then
        # The first run: wait for its first checkpoint, then kill within 1.5 s.
        t0=$(date +%s.%N)
        until [ -f "$ckpt" ] || ! kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
        first=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        kill_max=$(awk -v f="$first" -v m="$kill_min" 'BEGIN { printf "%.2f", m + 2 * f }')
        echo "first checkpoint after ${first}s: later kills come within [$kill_min, $kill_max] s"
        delay="$(random_between 0 1.5 "$k")"
    elif ((k % 2 == 0)); then
        # Every other kill aims at a checkpoint write: wait for this run's temporary file.
        delay="$(random_between 0 0.002 "$k")"
        until [ -e "$ckpt.tmp.$pid" ] || ! kill -0 "$pid" 2>/dev/null; do nap 0.0005; done
        nap "$delay"
        when="${delay}s after a checkpoint write began"
        delay=0
    else
        delay="$(random_between "$kill_min" "$kill_max" "$k")"
    fi
    nap "$delay"
    if ! kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" || true
        fail "run $k ended before the kill: $(tail -2 "$work/train.err")"
    fi
    wait "$pid" 2>/dev/null || true
    tmp_after=$(count_tmp)
    if ((tmp_after > tmp_before)); then during_write=$((during_write + 1)); fi
    if [ ! -f "$ckpt" ]; then
        no_checkpoint_yet=$((no_checkpoint_yet + 1))
        continue
    fi
    step="$(step_of "$ckpt")" || fail "after kill $k the checkpoint does not load: $(cat "$work/eval.err")"
    ((step >= last)) || fail "after kill $k the checkpoint went back from step $last to $step"
    if ((step > last)); then advanced=$((advanced + 1)); fi
    printf 'kill %3d %s: checkpoint at step %d loads\n' "$k" "${when:-after ${delay}s}" "$step"
    last=$step
done
[ -f "$ckpt" ] || fail "no checkpoint was ever written"

# The run continues: resume to a few steps past the last checkpoint and finish normally.
target=$((last + 3))
"$bin" train --resume "$ckpt" --out "$run" --steps "$target" >"$work/train.out" 2>"$work/train.err" ||
    fail "resume after the last kill failed: $(tail -2 "$work/train.err")"
grep -q "finished at step $target" "$work/train.out" || fail "resumed run did not finish at step $target"
[ "$(step_of "$ckpt")" = "$target" ] || fail "final checkpoint is not at step $target"
leftover=$(count_tmp)
echo "== $kills kills survived: every checkpoint loaded, steps never went back (last $last),"
echo "   $advanced runs resumed and wrote a newer checkpoint before their kill,"
echo "   $during_write kills hit a checkpoint write, $no_checkpoint_yet came before the first checkpoint,"
echo "   the resumed run finished at step $target; temporary files left by killed writes: $leftover"

# Full disk during a checkpoint write: the file size limit is half the checkpoint.
before_sum="$(md5sum <"$ckpt")"
size=$(stat -c %s "$ckpt")
limit_kb=$((size / 2 / 1024))
set +e
(
    trap '' XFSZ
    ulimit -f "$limit_kb"
    exec "$bin" train --resume "$ckpt" --out "$run" --steps $((target + 2))
) >"$work/full.out" 2>"$work/full.err"
rc=$?
set -e
((rc != 0)) || fail "the run with a full disk exited 0"
((rc < 128)) || fail "the run with a full disk crashed (exit $rc)"
grep -q "krause: error: .*checkpoint.safetensors" "$work/full.err" || fail "the full-disk error does not name the file: $(cat "$work/full.err")"
[ "$(md5sum <"$ckpt")" = "$before_sum" ] || fail "the previous checkpoint changed during the failed write"
step="$(step_of "$ckpt")" || fail "the previous checkpoint no longer loads"
[ "$step" = "$target" ] || fail "the previous checkpoint is at step $step, expected $target"
echo "== full disk (limit ${limit_kb} KiB < checkpoint $((size / 1024)) KiB): exit $rc, message:"
echo "   $(grep "krause: error" "$work/full.err")"
echo "   previous checkpoint intact (step $step, same md5); temporary files left: $(count_tmp)"
echo "== kill-test passed in $(($(date +%s) - start)) s"
if [ -z "${KRAUSE_KILL_DIR:-}" ]; then rm -rf "$work"; fi
