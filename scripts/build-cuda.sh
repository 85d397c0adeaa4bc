#!/usr/bin/env bash
# Configures and builds Krause Studio with the CUDA kernels against LibTorch 2.x in build-cuda/,
# installing the Debian packages it needs first where it can.
# Usage: scripts/build-cuda.sh [cmake --build options, e.g. --target krause_tests].
# Needs beside LibTorch and the CUDA toolkit (nvcc): cmake, g++, pkgconf, libfmt-dev,
# nlohmann-json3-dev, libcli11-dev, libgtest-dev, libstb-dev, zlib1g-dev, libcurl4-openssl-dev,
# libarchive-dev, nettle-dev (no GUI here, so no ImGui or GLFW). Missing ones are installed with
# apt-get as root or through sudo; without either the script prints the apt-get line, and how to
# unpack the .deb files with dpkg -x instead.
# Env: LIBTORCH_DIR (else the python3 torch package's CMake prefix), CMAKE_CUDA_ARCHITECTURES
# (else the first GPU's compute capability, 9.0 -> 90), KRAUSE_EXTRA_PREFIX (';'-separated prefixes,
# e.g. the usr/ folder of Debian packages unpacked with dpkg -x), KRAUSE_BUILD_DIR (else
# build-cuda).
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

# The libraries come as Debian -dev packages, each known here by a header it installs, looked for
# in the system's include folders and in those of KRAUSE_EXTRA_PREFIX (so any distribution, or a
# tree unpacked with dpkg -x, passes). fmt and stb link against shared libraries, whose runtime
# packages (after the '/') such a tree needs as well.
dev_packages=(libfmt-dev:fmt/format.h/libfmt9 nlohmann-json3-dev:nlohmann/json.hpp
              libcli11-dev:CLI/CLI.hpp libgtest-dev:gtest/gtest.h libstb-dev:stb/stb_image.h/libstb0
              zlib1g-dev:zlib.h libcurl4-openssl-dev:curl/curl.h/libcurl4
              libarchive-dev:archive.h/libarchive13 nettle-dev:nettle/md5.h/libnettle8)
include_dirs=(/usr/include /usr/local/include)
IFS=';' read -r -a extra <<<"${KRAUSE_EXTRA_PREFIX:-}"
for p in "${extra[@]}"; do include_dirs+=("$p/include"); done
# Debian puts some headers (curl's) in the multiarch folder, e.g. include/x86_64-linux-gnu/.
multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
if [ -n "$multiarch" ]; then
    for d in "${include_dirs[@]}"; do include_dirs+=("$d/$multiarch"); done
fi
missing=() runtime=() tools=()
for entry in "${dev_packages[@]}"; do
    package="${entry%%:*}" rest="${entry#*:}"
    header="${rest%/lib*}" found=0
    for d in "${include_dirs[@]}"; do [ -f "$d/$header" ] && found=1; done
    if [ "$found" = 0 ]; then
        missing+=("$package")
        if [ "$rest" != "$header" ]; then runtime+=("${rest##*/}"); fi
    fi
done
for t in cmake:cmake g++:g++ pkg-config:pkgconf; do
    command -v "${t%%:*}" >/dev/null 2>&1 || tools+=("${t#*:}")
done
need=("${tools[@]}" "${missing[@]}")
if ((${#need[@]})); then
    sudo=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo"
    fi
    installed_now=0
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
        echo "== installing: ${need[*]}"
        # Without a reachable mirror this fails; the instructions below then say what else works.
        if $sudo apt-get update -qq &&
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; then
            installed_now=1
        fi
    fi
    if [ "$installed_now" = 0 ]; then
        unpack=("${missing[@]}" "${runtime[@]}")
        {
            echo "build-cuda: missing Debian packages: ${need[*]}"
            echo "  as root (or through sudo): apt-get update && apt-get install -y ${need[*]}"
            if ((${#tools[@]})); then
                echo "  (${tools[*]} must be on PATH: install them, or e.g. pip install cmake)"
            fi
            if ((${#missing[@]})); then
                echo "  without root or a mirror: fetch the .deb files where apt works (apt-get"
                echo "  download needs no root) or from https://packages.debian.org/bookworm/<name>,"
                echo "  unpack them here with dpkg -x and point KRAUSE_EXTRA_PREFIX at the tree:"
                echo "    mkdir -p ~/krause-deps && cd ~/krause-deps"
                echo "    apt-get download ${unpack[*]}"
                echo "    for f in *.deb; do dpkg -x \"\$f\" ~/krause-deps/root; done"
                echo "    KRAUSE_EXTRA_PREFIX=~/krause-deps/root/usr $0"
            fi
        } >&2
        exit 1
    fi
fi

prefix="$torch_prefix"
if [ -n "${KRAUSE_EXTRA_PREFIX:-}" ]; then
    prefix="$prefix;$KRAUSE_EXTRA_PREFIX"
    # A dev package's lib<name>.so links to its runtime library. Where the system has a runtime
    # library of the same soname, the link goes to the system's: the system's own libraries
    # (libcurl's TLS library, say) were built against it and may need symbols an older unpacked
    # copy lacks, and a link left dangling (its runtime package not unpacked) would make CMake
    # take the static archive instead.
    for p in "${extra[@]}"; do
        for link in "$p"/lib/*/lib*.so "$p"/lib/lib*.so; do
            [ -L "$link" ] || continue
            soname="$(basename "$(readlink "$link")" | sed -E 's/(\.so\.[0-9]+).*/\1/')"
            [[ "$soname" == *.so.* ]] || continue
            for d in "/lib/$multiarch" "/usr/lib/$multiarch" /lib64 /usr/lib64; do
                [ -e "$d/$soname" ] || continue
                if [ "$(readlink -f "$link")" != "$(readlink -f "$d/$soname")" ]; then
                    ln -sfn "$d/$soname" "$link"
                    echo "== $link -> $d/$soname (the system's)"
                fi
                break
            done
        done
    done
    # The pkg-config files of an unpacked tree still say prefix=/usr: copies that name the tree
    # take their place (CMake would otherwise add the originals to pkg-config's search path, in
    # an order that differs between its versions); CMake finds the CMake packages by itself.
    pc_dir="$build/extra-pkgconfig"
    mkdir -p "$pc_dir"
    for p in "${extra[@]}"; do
        for pc in "$p"/lib/*/pkgconfig/*.pc "$p"/lib/pkgconfig/*.pc "$p"/share/pkgconfig/*.pc; do
            [ -f "$pc" ] && sed "s|^prefix=.*|prefix=$p|" "$pc" >"$pc_dir/$(basename "$pc")"
        done
    done
    export PKG_CONFIG_PATH="$pc_dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
fi

arch="${CMAKE_CUDA_ARCHITECTURES:-}"
if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
    arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 |
            tr -d ' .')" || arch=""
fi

args=(-DCMAKE_BUILD_TYPE=Release -DKRAUSE_BUILD_GUI=OFF "-DCMAKE_PREFIX_PATH=$prefix")
if [ -n "${KRAUSE_EXTRA_PREFIX:-}" ]; then args+=(-DPKG_CONFIG_USE_CMAKE_PREFIX_PATH=OFF); fi
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
