#!/usr/bin/env python3
"""Crops a krause-studio script screenshot (NN-step.png) to the union of screen regions that its
state dump (NN-step.json, "regions") names, e.g. the Dynamics view's particle canvases, and
writes it scaled by SCALE. Needs Pillow (Debian: python3-pil).

Usage: crop_regions.py SHOT.png OUT.png SCALE REGION [REGION ...]
"""
import json
import sys

from PIL import Image


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    shot, out, scale, names = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    with open(shot[: -len(".png")] + ".json") as f:
        regions = json.load(f)["regions"]
    missing = [n for n in names if n not in regions]
    if missing:
        sys.exit("%s: no region %s (has %s)" % (shot, ", ".join(missing), ", ".join(regions)))
    boxes = [regions[n] for n in names]
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[0] + b[2] for b in boxes)
    bottom = max(b[1] + b[3] for b in boxes)
    image = Image.open(shot).crop((left, top, right, bottom))
    size = (int(image.width * scale), int(image.height * scale))
    image.resize(size, Image.LANCZOS).convert("P", palette=Image.ADAPTIVE).save(out, optimize=True)


if __name__ == "__main__":
    main()
