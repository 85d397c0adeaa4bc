#!/usr/bin/env bash
# Plays one krause-studio script under Xvfb and checks its dumps and screenshots.
# Usage: run_studio_test.sh STUDIO CHECKER SCRIPT EXPECTATIONS OUT_DIR [--needs-data]
# Exit 77 (CTest SKIP_RETURN_CODE) when Xvfb or, with --needs-data, MNIST is missing.
# STUDIO_GEOMETRY=WxH sets the window (default 1400x900).
set -uo pipefail

studio="$1" checker="$2" script="$3" expectations="$4" out="$5"
needs_data="${6:-}"

for tool in xvfb-run xauth; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (apt-get install xvfb xauth)"
        exit 77
    fi
done
if [ "$needs_data" = "--needs-data" ]; then
    for kind in mnist cifar-10; do
        if [ ! -d "${KRAUSE_DATA_DIR:-/nonexistent}/$kind" ]; then
            echo "SKIP: set KRAUSE_DATA_DIR to a folder holding mnist/ and cifar-10/ for this test"
            exit 77
        fi
    done
fi

rm -rf "$out"
mkdir -p "$out/config"
# Keep the user's recent-file list out of the test, and let the script name files under $out.
export XDG_CONFIG_HOME="$out/config"
export STUDIO_OUT="$out"

geometry="${STUDIO_GEOMETRY:-1400x900}"
xvfb-run -a -s "-screen 0 ${geometry}x24" \
    "$studio" --script "$script" --screenshots "$out/shots" --width "${geometry%x*}" \
    --height "${geometry#*x}"
status=$?
if [ $status -ne 0 ]; then
    echo "krause-studio exited with status $status (screenshots in $out/shots)"
    exit 1
fi
"$checker" "$out/shots" "$expectations"
