#!/usr/bin/env python3
"""Copies a CIFAR-10 binary folder with the last N records of data_batch_1 moved into test_batch,
so that a training run can choose its stopping point on held-out training images (the real test
images stay unseen). Usage: scripts/cifar_holdout.py SRC_CIFAR_DIR DST_DIR [N=500]"""
import gzip
import os
import shutil
import sys

RECORD = 3073  # one label byte, then the 32x32 R, G and B planes


def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, dst = sys.argv[1], os.path.join(sys.argv[2], "cifar-10-batches-bin")
    held = int(sys.argv[3]) if len(sys.argv) == 4 else 500
    if os.path.isdir(os.path.join(src, "cifar-10-batches-bin")):
        src = os.path.join(src, "cifar-10-batches-bin")
    first = next(p for p in ("data_batch_1.bin.gz", "data_batch_1.bin")
                 if os.path.exists(os.path.join(src, p)))
    raw = read(os.path.join(src, first))
    n = len(raw) // RECORD
    if len(raw) % RECORD or not 0 < held < n:
        sys.exit(f"{first}: {n} records, cannot hold out {held}")
    os.makedirs(dst, exist_ok=True)
    keep = n - held
    with open(os.path.join(dst, "data_batch_1.bin"), "wb") as f:
        f.write(raw[:keep * RECORD])
    with open(os.path.join(dst, "test_batch.bin"), "wb") as f:
        f.write(raw[keep * RECORD:])
    for i in range(2, 6):
        for name in (f"data_batch_{i}.bin.gz", f"data_batch_{i}.bin"):
            if os.path.exists(os.path.join(src, name)):
                shutil.copy(os.path.join(src, name), dst)
                break
    print(f"{dst}: data_batch_1 keeps {keep} of {n} records, test_batch holds the other {held}")


if __name__ == "__main__":
    main()
