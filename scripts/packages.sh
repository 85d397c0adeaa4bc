# Sourced by the scripts: installs the Debian 12 packages the build, tests and GUI need, and finds
# the real data beside the checkout.
# libopenblas0-pthread matters: without it LibTorch falls back to the reference BLAS, ~15x slower.
# clang and libclang-rt-14-dev (libFuzzer) build the fuzz targets the test suite replays and runs.
# python3-torch and python3-numpy run python/krause_model.py against the C++ model in the tests.

krause_packages=(cmake g++ make pkg-config libtorch-dev libopenblas0-pthread libfmt-dev libstb-dev
                 libcli11-dev nlohmann-json3-dev zlib1g-dev libgtest-dev libimgui-dev libglfw3-dev
                 libgl-dev xvfb xauth ccache dataset-fashion-mnist libgloo-dev
                 libcurl4-openssl-dev libarchive-dev nettle-dev
                 clang libclang-rt-14-dev python3-torch python3-numpy)

krause_install_packages() {
    local missing=() p sudo=""
    for p in "${krause_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    echo "== installing: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# KRAUSE_DATA_DIR, unless set, becomes ../shared/data beside the checkout at $1 when it exists.
krause_export_data_dir() {
    if [ -z "${KRAUSE_DATA_DIR:-}" ] && [ -d "$1/../shared/data" ]; then
        export KRAUSE_DATA_DIR="$(cd "$1/../shared/data" && pwd)"
    fi
}
