#!/usr/bin/env bash
# Installs what is missing, builds, and starts krause-studio, the desktop GUI.
# Usage: scripts/studio.sh [krause-studio options, e.g. --checkpoint FILE]. Env: KRAUSE_BUILD_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KRAUSE_BUILD_DIR:-$root/build}"

# --help needs no display: it prints the studio's options (after the build).
wants_help=0
for arg in "$@"; do
    case "$arg" in -h | --help) wants_help=1 ;; esac
done
if [ "$wants_help" = 0 ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    cat >&2 <<'MSG'
krause-studio needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set.
Use it from a desktop session (or ssh -X), or run it headless under Xvfb:
    xvfb-run -a build/app/krause-studio --script FILE --screenshots DIR
or use the command line instead, for example:
    build/app/krause sample --checkpoint model.safetensors -n 16 --out samples.png
    build/app/krause complete --checkpoint model.safetensors --data mnist --index 0 --out c.png
    build/app/krause inspect --checkpoint model.safetensors --image mnist:0 --pixel 14,10
    build/app/krause train --preset mnist-tiny --data mnist --steps 500 --out runs/tiny
MSG
    exit 1
fi

source "$root/scripts/packages.sh"
krause_install_packages

krause_export_data_dir "$root"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKRAUSE_BUILD_GUI=ON
cmake --build "$build" -j"$(nproc)" --target krause krause-studio
exec "$build/app/krause-studio" "$@"
