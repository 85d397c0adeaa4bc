#!/usr/bin/env bash
# Configures and builds Krause Studio with the CUDA kernels against LibTorch 2.x in build-cuda/.
# Usage: scripts/build-cuda.sh [cmake --build options, e.g. --target krause_tests].
# Env: LIBTORCH_DIR (else the python3 torch package's CMake prefix), CMAKE_CUDA_ARCHITECTURES
# (else the first GPU's compute capability, 9.0 -> 90), KRAUSE_EXTRA_PREFIX (';'-separated prefixes,
# e.g. Debian -dev packages unpacked with dpkg -x), KRAUSE_BUILD_DIR (else build-cuda).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KRAUSE_BUILD_DIR:-$root/build-cuda}"

if [ -n "${LIBTORCH_DIR:-}" ]; then
    torch_prefix="$LIBTORCH_DIR"
elif torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' \
                    2>/dev/null)"; then
    :
else
    echo "build-cuda: no LibTorch found: set LIBTORCH_DIR to an unpacked LibTorch 2.x with CUDA," \
         "or install the torch Python package" >&2
    exit 1
fi
prefix="$torch_prefix"
if [ -n "${KRAUSE_EXTRA_PREFIX:-}" ]; then prefix="$prefix;$KRAUSE_EXTRA_PREFIX"; fi

arch="${CMAKE_CUDA_ARCHITECTURES:-}"
if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
    arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 |
            tr -d ' .')" || arch=""
fi

args=(-DCMAKE_BUILD_TYPE=Release -DKRAUSE_BUILD_GUI=OFF "-DCMAKE_PREFIX_PATH=$prefix")
# NCCL for multi-GPU training: the header of the pip package nvidia-nccl (PyTorch's own NCCL), or
# NCCL_INCLUDE_DIR.
nccl_include="${NCCL_INCLUDE_DIR:-}"
if [ -z "$nccl_include" ]; then
    nccl_include="$(python3 -c 'import glob, site
hits = [p for d in site.getsitepackages() for p in glob.glob(d + "/nvidia/**/nccl.h", recursive=True)]
print(hits[0].rsplit("/", 1)[0] if hits else "")' 2>/dev/null)" || nccl_include=""
fi
if [ -n "$nccl_include" ]; then args+=("-DKRAUSE_NCCL_INCLUDE=$nccl_include"); fi
if [ -n "$arch" ]; then args+=("-DCMAKE_CUDA_ARCHITECTURES=$arch"); fi
# A build folder keeps the generator it was first configured with.
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then args+=(-G Ninja); fi

echo "== LibTorch: $torch_prefix; CUDA architectures: ${arch:-CMake default}; build: $build"
cmake -S "$root" -B "$build" "${args[@]}"
cmake --build "$build" -j"$(nproc)" "$@"
