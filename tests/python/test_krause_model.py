"""python/krause_model.py against the C++ model: bits per dimension on real MNIST test images equal
`krause eval` for every attention kind, decoding equals the forward pass, and a seed draws the
samples `krause sample` draws. Exit 77 (skipped) without python3-torch or real MNIST.

    python3 test_krause_model.py --krause build/app/krause --work DIR [--data DATA_DIR]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import zlib

from common import check, finish, require_torch, skip

TOLERANCE = 1e-4  # bits per dimension
LIMIT = 16        # real test images

torch = require_torch()

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import krause_model  # noqa: E402

def run(*args):
    done = subprocess.run(list(args), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def read_png_rgba(path):
    """(height, width, 4) bytes of an 8-bit RGBA, non-interlaced PNG (what stb_image_write makes)."""
    with open(path, "rb") as f:
        blob = f.read()
    pos, idat = 8, b""
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, body = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 6), "expected 8-bit RGBA"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), width * 4
    rows, prev = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for x in range(stride):
            a = cur[x - 4] if x >= 4 else 0
            b, c = prev[x], prev[x - 4] if x >= 4 else 0
            if kind == 1:
                cur[x] = (cur[x] + a) & 255
            elif kind == 2:
                cur[x] = (cur[x] + b) & 255
            elif kind == 3:
                cur[x] = (cur[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(cur))
        prev = cur
    return torch.tensor(list(b"".join(rows)), dtype=torch.uint8).view(height, width, 4)


def registry_mnist_models(root):
    """Bundled mnist-small models, from assets/models/models.json (files that exist only): one per
    attention kind; a larger MNIST model would cost far more CPU here and add no kind."""
    path = os.path.join(root, "assets", "models", "models.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        entries = json.load(f)["models"]
    files = [(e["attention"], os.path.join(root, "assets", "models", e["file"])) for e in entries
             if e["data"] == "mnist" and e["preset"] == "mnist-small"]
    return [(kind, file) for kind, file in files if os.path.exists(file)]


@torch.no_grad()
def sharpen(model):
    """Random weights under which every part of the network matters for the likelihood."""
    model.tok_emb.weight.normal_(0.0, 1.0)
    model.pos_emb.normal_(0.0, 1.0)
    model.prior.normal_(0.0, 2.0)
    for block in model.blocks:
        for layer in (block.attn.q_proj, block.attn.k_proj, block.fc1):
            layer.weight.mul_(3.0)
        if hasattr(block.attn, "log_sigma"):
            block.attn.log_sigma.uniform_(0.5, 2.0)
    model.head.weight.mul_(4.0)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--krause", required=True, help="the built krause executable")
    ap.add_argument("--work", required=True, help="folder for the checkpoints this test writes")
    ap.add_argument("--data", default=os.environ.get("KRAUSE_DATA_DIR", ""),
                    help="data folder holding mnist/ (default: $KRAUSE_DATA_DIR)")
    a = ap.parse_args()
    mnist = os.path.join(a.data, "mnist")
    if not a.data or not os.path.exists(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")):
        skip("real MNIST not found: set KRAUSE_DATA_DIR")
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(2)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

    # Every attention kind: the bundled MNIST models, and for each kind a fresh mnist-small model
    # whose weights are made sharp here (large embeddings, peaked attention and logits: a freshly
    # initialised model predicts nearly uniformly, which would hide mistakes), written by
    # krause_model.save; one more stored as bf16 by `krause export`.
    models = registry_mnist_models(root)
    torch.manual_seed(3)
    for kind in ("krause", "softmax", "linear"):
        fresh = os.path.join(a.work, f"fresh-{kind}.safetensors")
        run(a.krause, "init", "--preset", "mnist-small", "--attention", kind, "--seed", "11",
            "--out", fresh)
        model = sharpen(krause_model.load(fresh))
        out = os.path.join(a.work, f"sharp-{kind}.safetensors")
        krause_model.save(model, out, {"dataset": "mnist"})
        models.append((kind, out))
    bf16 = os.path.join(a.work, "sharp-bf16.safetensors")
    run(a.krause, "export", "--checkpoint", models[-1][1], "--out", bf16, "--bf16")
    models.append((models[-1][0] + " (bf16)", bf16))

    images = krause_model.read_idx_images(os.path.join(mnist, "t10k-images-idx3-ubyte.gz"), LIMIT)
    for kind, path in models:
        ours = krause_model.load(path).bits_per_dim(images)
        ref = json.loads(run(a.krause, "eval", "--checkpoint", path, "--data", "mnist:" + mnist,
                             "--limit", str(LIMIT), "--device", "cpu", "--json"))
        for name, x, y in (("T", ours[0], ref["bpd_all"]), ("T-1", ours[1], ref["bpd_predicted"])):
            check(abs(x - y) <= TOLERANCE, f"{kind} {os.path.basename(path)}: bits/dim over {name} "
                  f"{x:.6f}, krause eval {y:.6f}")

    # Decoding with the caches gives the forward pass's logits (the Krause ring wraps: W = 32).
    for kind in ("krause", "softmax", "linear"):
        fresh = os.path.join(a.work, f"fresh-tiny-{kind}.safetensors")
        run(a.krause, "init", "--preset", "mnist-tiny", "--attention", kind, "--seed", "5",
            "--out", fresh)
        path = os.path.join(a.work, f"tiny-{kind}.safetensors")
        krause_model.save(sharpen(krause_model.load(fresh)), path)
        model = krause_model.load(path)
        x = images[:2].long()
        with torch.no_grad():
            full = model(x[:, :-1])
            caches = [b.attn.empty_cache(2) for b in model.blocks]
            steps = torch.stack([model.decode_step(caches, x[:, p], p) for p in range(783)], 1)
        err = (full - steps).abs().max().item()
        check(err < 1e-4, f"{kind}: decoding equals the forward pass (max |logit diff| {err:.2e})")

        # The same seed draws the same images as `krause sample` (the uniforms are shared; a
        # rounding difference at a CDF boundary could change one image, hardly all four).
        png = os.path.join(a.work, f"tiny-{kind}.png")
        run(a.krause, "sample", "--checkpoint", path, "-n", "4", "--columns", "4", "--seed", "9",
            "--device", "cpu", "--out", png)
        grid = read_png_rgba(png)
        theirs = [grid[:, i * 29:i * 29 + 28, 0].reshape(-1) for i in range(4)]
        ours = model.sample(4, seed=9)
        same = sum(bool(torch.equal(ours[i], theirs[i])) for i in range(4))
        check(same >= 3, f"{kind}: seed 9 draws krause sample's images ({same} of 4 identical)")

    return finish()


if __name__ == "__main__":
    sys.exit(main())
