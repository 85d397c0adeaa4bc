"""Writes one of our checkpoints as a state dict of the paper's published pixel Transformer (class
ImageTransformer of autoregressive_transformers/{mnist,cifar10}/train_*.py in the repository
Jingkun-Liu/Krause-Synchronization-Transformers), so that a model trained here loads there with
load_state_dict(strict=True), for training on, generation or completion.

    python3 to_official.py MODEL.safetensors OUT.pt [--script mnist|cifar10]

Names, ours -> published (i: block; d: d_model, H: heads, T: sub-pixels per image):
    tok_emb.weight (256, d)            -> token_emb.weight
    pos_emb (T, d)                     -> pos_emb.weight (an nn.Embedding there)
    blocks.i.ln1.*, blocks.i.ln2.*     -> layers.i.ln1.*, layers.i.ln2.*
    blocks.i.attn.{q,k,v}_proj.*       -> layers.i.attn.W_{q,k,v}.*    (krause)
                                          layers.i.attn.{q,k,v}_proj.* (softmax, linear)
    blocks.i.attn.out_proj.*           -> layers.i.attn.out_proj.*
    blocks.i.attn.log_sigma (H)        -> layers.i.attn.log_sigma (H, 1, 1)
    blocks.i.fc1.*, blocks.i.fc2.*     -> layers.i.mlp.0.*, layers.i.mlp.2.* (Linear, GELU, Linear, Dropout)
    ln_f.*, head.*                     -> ln_f.*, head.*
    prior (256)                        -> left out: the published model never predicts x[0]
Every tensor keeps its layout (nn.Linear weights are (out, in) on both sides); values become fp32.
Attention kinds: our krause, softmax and linear are the scripts' attn_type 'krause', 'vanilla' and
'linear'. The scripts fix the image shape: mnist 28x28x1 (T = 784), cifar10 32x32x3 (T = 3072).
"""
import argparse
import json
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import krause_model  # noqa: E402

ATTN_TYPE = {"krause": "krause", "softmax": "vanilla", "linear": "linear"}  # ours -> published
SCRIPTS = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}                  # (height, width, channels)
LEFT_OUT = {"prior": "our learned distribution of the first sub-pixel; the published model never predicts x[0]"}


def published_name(name, kind):
    """The published state-dict key of our tensor `name` under attention `kind`; None if it has none."""
    if name in LEFT_OUT:
        return None
    if name == "tok_emb.weight":
        return "token_emb.weight"
    if name == "pos_emb":
        return "pos_emb.weight"
    if not name.startswith("blocks."):
        return name  # ln_f.*, head.*
    _, i, rest = name.split(".", 2)
    module, param = rest.rsplit(".", 1)
    module = {"fc1": "mlp.0", "fc2": "mlp.2"}.get(module, module)
    if kind == "krause":
        module = {"attn.q_proj": "attn.W_q", "attn.k_proj": "attn.W_k", "attn.v_proj": "attn.W_v"}.get(module, module)
    return f"layers.{i}.{module}.{param}"


def read_checkpoint(path):
    """(Config, {name: fp32 tensor}) of one of our checkpoints, every tensor checked against the config."""
    try:
        tensors, metadata = krause_model.read_safetensors(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file")
    except Exception as e:  # a truncated file, a header that is not JSON, an unknown dtype, ...
        raise ValueError(f"{path}: not a readable safetensors file ({str(e).removeprefix(path + ': ')})")
    if metadata.get("format") != "krause-studio-checkpoint" or "model_config" not in metadata:
        raise ValueError(f"{path}: not a Krause Studio checkpoint (no krause-studio-checkpoint metadata)")
    kind = json.loads(metadata["model_config"]).get("attention")
    if kind not in ATTN_TYPE:
        raise ValueError(f"{path}: attention kind '{kind}' has no counterpart in the published scripts "
                         f"(they build {', '.join(sorted(ATTN_TYPE))} attention only)")
    c = krause_model.Config(metadata["model_config"])
    expected = {n: tuple(t.shape) for n, t in krause_model.PixelTransformer(c).state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"{path}: tensors do not match its model_config (missing {missing[:3]}, "
                         f"unexpected {extra[:3]})")
    for n, shape in expected.items():
        if tuple(tensors[n].shape) != shape:
            raise ValueError(f"{path}: tensor '{n}' has shape {tuple(tensors[n].shape)}, expected {shape}")
    return c, {n: tensors[n].float() for n in expected}


def script_for(c, script=None):
    """The published script that builds c's image shape (the one asked for, or inferred)."""
    shape = (c.height, c.width, c.channels)
    fits = [name for name, s in SCRIPTS.items() if s == shape]
    if script is None and not fits:
        raise ValueError(f"no published script builds {c.height}x{c.width}x{c.channels} images "
                         f"(mnist: 28x28x1, cifar10: 32x32x3)")
    if script is not None and script not in fits:
        h, w, ch = SCRIPTS[script]
        raise ValueError(f"the {script} script builds {h}x{w}x{ch} images, the checkpoint holds "
                         f"{c.height}x{c.width}x{c.channels}")
    return script or fits[0]


def convert(path, script=None):
    """(published state dict, description) of our checkpoint at `path`. The description holds the
    script, the ImageTransformer constructor arguments, its command-line flags and what was left out."""
    c, tensors = read_checkpoint(path)
    script = script_for(c, script)
    attn_type = ATTN_TYPE[c.attention]
    state = OrderedDict()
    for name, t in tensors.items():
        target = published_name(name, c.attention)
        if target is None:
            continue
        if name.endswith("attn.log_sigma"):
            t = t.reshape(c.n_heads, 1, 1)
        state[target] = t.contiguous()
    kwargs = OrderedDict(seq_len=c.seq_len, d_model=c.d_model, nhead=c.n_heads, num_layers=c.n_layers,
                         attn_type=attn_type, top_k=c.top_k, window_size=c.window)
    flags = (f"--d_model {c.d_model} --nhead {c.n_heads} --num_layers {c.n_layers} "
             f"--top_k {c.top_k} --window_size {c.window}")
    info = {"script": f"autoregressive_transformers/{script}/train_{script}.py", "kwargs": kwargs,
            "flags": flags, "left_out": {n: LEFT_OUT[n] for n in tensors if n in LEFT_OUT},
            "file_name": f"saved_models_{script}/{script}_{attn_type}_D{c.d_model}_L{c.n_layers}"
                         f"_K{c.top_k}_W{c.window}.pt"}
    return state, info


def to_official_state_dict(path, script=None):
    """{published name: fp32 tensor} of our checkpoint at `path` (see the module's docstring)."""
    return convert(path, script)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint", help="one of our checkpoints (.safetensors)")
    ap.add_argument("out", help="where to torch.save the published state dict (.pt)")
    ap.add_argument("--script", choices=sorted(SCRIPTS), help="published script (default: by image shape)")
    a = ap.parse_args()
    try:
        state, info = convert(a.checkpoint, a.script)
    except ValueError as e:
        sys.exit(f"to_official.py: error: {e}")
    for name, why in info["left_out"].items():
        print(f"to_official.py: left out '{name}' ({why})", file=sys.stderr)
    torch.save(state, a.out)
    args = ", ".join(f"{k}={v!r}" for k, v in info["kwargs"].items())
    print(f"wrote {a.out}: {len(state)} tensors, {sum(t.numel() for t in state.values()):,} parameters "
          f"for {info['script']}: ImageTransformer({args}); flags {info['flags']}; "
          f"the scripts load it as {info['file_name']}")


if __name__ == "__main__":
    main()
