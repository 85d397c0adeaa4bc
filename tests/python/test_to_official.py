"""python/to_official.py: every bundled model exports to a state dict whose keys and shapes are those
of the paper's published ImageTransformer (the table below, read off its module tree), every value
is its source tensor, and bad input fails with one error line. Needs neither the network nor the
published code. Exit 77 (skipped) without python3-torch.

    python3 test_to_official.py
"""
import contextlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

from common import check, finish, require_torch, skip

torch = require_torch()

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOOL = os.path.join(ROOT, "python", "to_official.py")
sys.path.insert(0, os.path.join(ROOT, "python"))
import krause_model  # noqa: E402
import to_official  # noqa: E402

# ---- The published module tree (train_mnist.py / train_cifar10.py, class ImageTransformer) -------

ATTN_TYPE = {"krause": "krause", "softmax": "vanilla", "linear": "linear"}  # ours -> published
SCRIPT = {(28, 28, 1): "mnist", (32, 32, 3): "cifar10"}


def published_shapes(c):
    """{key: shape} of ImageTransformer(seq_len=T, d_model=d, nhead=H, num_layers=L, attn_type=...)."""
    d, H, T = c["d_model"], c["n_heads"], c["image_height"] * c["image_width"] * c["image_channels"]
    krause = c["attention"] == "krause"
    shapes = {"token_emb.weight": (256, d), "pos_emb.weight": (T, d)}
    for i in range(c["n_layers"]):
        p = f"layers.{i}."
        for ln in ("ln1", "ln2"):
            shapes[p + ln + ".weight"] = shapes[p + ln + ".bias"] = (d,)
        for proj in (("W_q", "W_k", "W_v") if krause else ("q_proj", "k_proj", "v_proj")) + ("out_proj",):
            shapes[f"{p}attn.{proj}.weight"], shapes[f"{p}attn.{proj}.bias"] = (d, d), (d,)
        if krause:
            shapes[p + "attn.log_sigma"] = (H, 1, 1)
        shapes[p + "mlp.0.weight"], shapes[p + "mlp.0.bias"] = (4 * d, d), (4 * d,)  # Linear(d, 4d)
        shapes[p + "mlp.2.weight"], shapes[p + "mlp.2.bias"] = (d, 4 * d), (d,)      # Linear(4d, d)
    shapes.update({"ln_f.weight": (d,), "ln_f.bias": (d,), "head.weight": (256, d), "head.bias": (256,)})
    return shapes


# published key -> our tensor name, applied in order
TO_OURS = [(r"^token_emb\.weight$", "tok_emb.weight"), (r"^pos_emb\.weight$", "pos_emb"),
           (r"^layers\.(\d+)\.attn\.W_([qkv])\.", r"blocks.\1.attn.\2_proj."),
           (r"^layers\.(\d+)\.mlp\.0\.", r"blocks.\1.fc1."), (r"^layers\.(\d+)\.mlp\.2\.", r"blocks.\1.fc2."),
           (r"^layers\.", "blocks.")]


def our_name(key):
    for pattern, replacement in TO_OURS:
        key = re.sub(pattern, replacement, key)
    return key

# ---- Helpers ----------------------------------------------------------------------------------------


def run_tool(*args, separate=False):
    """(exit code, stdout, stderr) of `to_official.py ARGS`: in a separate python3 if asked, else
    through its main() here (the same code, without starting torch again for every case)."""
    if separate:
        done = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr
    out, err, code = io.StringIO(), io.StringIO(), 0
    argv, sys.argv = sys.argv, [TOOL, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            to_official.main()
    except SystemExit as e:  # sys.exit("message") prints the message on the way out of python3
        code = e.code if isinstance(e.code, int) else 1
        if isinstance(e.code, str):
            err.write(e.code + "\n")
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        blob = t.float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = metadata
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bundled_models():
    with open(os.path.join(ROOT, "assets", "models", "models.json")) as f:
        entries = json.load(f)["models"]
    files = [(e["name"], os.path.join(ROOT, "assets", "models", e["file"])) for e in entries]
    return [(name, path) for name, path in files if os.path.exists(path)]


def check_export(name, path, work, separate):
    tensors, metadata = krause_model.read_safetensors(path)
    c = json.loads(metadata["model_config"])
    if c["attention"] not in ATTN_TYPE:
        print(f"skip  {name}: attention '{c['attention']}' has no published counterpart")
        return
    out = os.path.join(work, name + ".pt")
    code, stdout, stderr = run_tool(path, out, separate=separate)
    check(code == 0, f"{name}: to_official.py exits 0{' (as a separate python3)' if separate else ''} "
          f"({stderr.strip()[-200:]})")
    if code != 0:
        return
    state = torch.load(out)
    expected = published_shapes(c)
    check(set(state) == set(expected), f"{name}: the {len(expected)} published keys, no more "
          f"(missing {sorted(set(expected) - set(state))[:3]}, extra {sorted(set(state) - set(expected))[:3]})")
    bad_shape = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    check(not bad_shape, f"{name}: every shape as published ({bad_shape[:3]} differ)")
    bad_dtype = [k for k, t in state.items() if t.dtype != torch.float32]
    check(not bad_dtype, f"{name}: every tensor fp32 ({bad_dtype[:3]} are not)")
    bad_value = [k for k in expected if k in state and our_name(k) in tensors
                 and not torch.equal(state[k], tensors[our_name(k)].float().reshape(expected[k]))]
    unmapped = [k for k in expected if our_name(k) not in tensors]
    check(not bad_value and not unmapped, f"{name}: every value is its source tensor "
          f"({bad_value[:3]} differ, {unmapped[:3]} have none)")
    count = sum(t.numel() for t in state.values())
    check(count == sum(t.numel() for t in tensors.values()) - 256, f"{name}: {count:,} parameters, ours less the prior")
    script = SCRIPT[(c["image_height"], c["image_width"], c["image_channels"])]
    attn = ATTN_TYPE[c["attention"]]
    wanted = [f"{script}/train_{script}.py", f"attn_type='{attn}'", f"--d_model {c['d_model']}",
              f"--nhead {c['n_heads']}", f"--num_layers {c['n_layers']}", f"--top_k {c['top_k']}",
              f"--window_size {c['window']}", f"{len(expected)} tensors"]
    summary = stdout.strip()
    check(len(summary.splitlines()) == 1 and all(w in summary for w in wanted),
          f"{name}: one summary line naming the script and its flags: {summary}")
    check("'prior'" in stderr, f"{name}: says on stderr that the prior is left out")


def check_errors(work):
    source = os.path.join(ROOT, "assets", "models", "mnist-softmax.safetensors")
    tensors, metadata = krause_model.read_safetensors(source)
    config = json.loads(metadata["model_config"])
    other_kind = os.path.join(work, "other-kind.safetensors")
    write_safetensors(other_kind, tensors, {**metadata, "model_config": json.dumps({**config, "attention": "sparse"})})
    garbage = os.path.join(work, "garbage.safetensors")
    with open(garbage, "wb") as f:
        f.write(b"this is not a checkpoint")
    foreign = os.path.join(work, "foreign.safetensors")
    write_safetensors(foreign, tensors, {})
    gap = os.path.join(work, "gap.safetensors")
    write_safetensors(gap, {k: v for k, v in tensors.items() if k != "head.bias"}, metadata)
    odd_shape = os.path.join(work, "odd-shape.safetensors")
    write_safetensors(odd_shape, tensors, {**metadata, "model_config": json.dumps({**config, "image_height": 14,
                                                                                 "image_width": 56})})
    cases = [("an attention kind with no counterpart", [other_kind], "no counterpart in the published scripts"),
             ("a file that is not safetensors", [garbage], "not a readable safetensors file"),
             ("a missing file", [os.path.join(work, "absent.safetensors")], "no such file"),
             ("a safetensors file that is not ours", [foreign], "not a Krause Studio checkpoint"),
             ("a checkpoint without head.bias", [gap], "do not match its model_config"),
             ("an image shape no script builds", [odd_shape], "no published script builds 14x56x1"),
             ("an MNIST model for the cifar10 script", [source, "--script", "cifar10"], "builds 32x32x3 images")]
    for n, (what, args, phrase) in enumerate(cases):
        out = os.path.join(work, "refused.pt")
        code, _, stderr = run_tool(*args, out, separate=n == 0)
        lines = stderr.strip().splitlines()
        check(code != 0 and len(lines) == 1 and phrase in lines[0] and not os.path.exists(out),
              f"refuses {what} with one error line: {lines[-1] if lines else '(none)'}")


def main():
    torch.set_num_threads(2)
    models = bundled_models()
    if not models:
        skip("no bundled models under assets/models")
    with tempfile.TemporaryDirectory() as work:
        for n, (name, path) in enumerate(models):
            check_export(name, path, work, separate=n == 0)
        check_errors(work)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
