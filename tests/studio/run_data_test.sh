#!/usr/bin/env bash
# Plays data.txt: a data folder that links to $KRAUSE_DATA_DIR/mnist, an empty one to download
# into from a file:// mirror of it, and KRAUSE_DATA_DIR unset so that only the studio's folder
# and this test's own XDG data folder are searched. Exit 77 when MNIST is not there.
# Usage: run_data_test.sh STUDIO CHECKER SCRIPT EXPECTATIONS OUT_DIR
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
studio="$(realpath -m "$1")" checker="$(realpath -m "$2")" script="$(realpath -m "$3")"
expectations="$(realpath -m "$4")" out="$(realpath -m "$5")"
src="${KRAUSE_DATA_DIR:-/nonexistent}/mnist"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
    t10k-labels-idx1-ubyte; do
    if [ ! -f "$src/$f.gz" ]; then
        echo "SKIP: set KRAUSE_DATA_DIR to a folder holding mnist/$f.gz for this test"
        exit 77
    fi
done
src="$(cd "$src" && pwd)"

data="$out-data"
rm -rf "$data"
mkdir -p "$data/linked" "$data/empty" "$data/xdg" "$data/work"
ln -s "$src" "$data/linked/mnist"
export STUDIO_DATA="$data"
export STUDIO_MNIST_MIRROR="file://$src"
export XDG_DATA_HOME="$data/xdg"
unset KRAUSE_DATA_DIR KRAUSE_DATA_MIRROR
cd "$data/work" || exit 1  # no ./data here
bash "$here/run_studio_test.sh" "$studio" "$checker" "$script" "$expectations" "$out"
