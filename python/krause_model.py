"""The Krause Studio pixel Transformer in plain PyTorch: reads (and writes) a checkpoint of ours,
computes bits per dimension and samples. Written to be read beside KRAUSE.md; the C++ model/ is the ground truth.

    python3 krause_model.py MODEL.safetensors --mnist DIR [--limit 16]   # bits/dim as JSON
    python3 krause_model.py MODEL.safetensors --sample 16 --out grid.pgm # samples as a PGM grid
"""
import argparse
import gzip
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 256
LINEAR_EPS = 1e-6  # linear attention: out = phi(q) S / (phi(q) z + eps)

# ---- Checkpoint file: 8-byte little-endian header length, JSON header, raw little-endian data ----

_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                 "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """Returns ({name: tensor}, {metadata key: string}) of a safetensors file."""
    try:
        from safetensors import safe_open
    except ImportError:
        safe_open = None
    if safe_open is not None:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        shape, dtype = entry["shape"], entry["dtype"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError(f"{path}: tensor '{name}' lies outside the file")
        raw = bytes(data[begin:end])
        if dtype == "BF16":  # numpy has no bf16: read the 16-bit patterns and reinterpret them
            t = torch.from_numpy(np.frombuffer(raw, dtype="<i2").copy()).view(torch.bfloat16)
        elif dtype in _NUMPY_DTYPES:
            t = torch.from_numpy(np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype]).copy())
        else:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {dtype}")
        tensors[name] = t.reshape(shape)
    return tensors, metadata


class Config:
    """ModelConfig of model/config.h, from the checkpoint's model_config JSON."""

    def __init__(self, text):
        self.json = text
        c = json.loads(text)
        self.height, self.width, self.channels = c["image_height"], c["image_width"], c["image_channels"]
        self.d_model, self.n_heads, self.n_layers = c["d_model"], c["n_heads"], c["n_layers"]
        self.attention = c["attention"]  # "krause" | "softmax" | "linear"
        self.window, self.top_k, self.init_sigma = c["window"], c["top_k"], c["init_sigma"]
        self.dropout = c.get("dropout", 0.0)
        self.embed_dropout = c.get("embed_dropout", 0.0)
        self.mlp_dropout = c.get("mlp_dropout", 0.0)
        self.seq_len = self.height * self.width * self.channels  # T
        self.head_dim = self.d_model // self.n_heads              # D
        if self.attention not in ("krause", "softmax", "linear"):
            raise ValueError(f"unknown attention kind '{self.attention}'")

# ---- The three attentions; q, k, v are (B, H, T, D) --------------------------------------------


def krause_scores(q, k, log_sigma):
    """-||q - k||^2 / (2 sigma_h^2) in fp32, in the expanded form of model/krause_attention.cpp."""
    q, k = q.float(), k.float()
    dist = (q.pow(2).sum(-1, keepdim=True) + k.pow(2).sum(-1).unsqueeze(-2)
            - 2.0 * q @ k.transpose(-1, -2)).clamp_min(0.0)           # (..., Q, S)
    inv = (log_sigma.float() * -2.0).exp().mul(0.5)                    # 1 / (2 sigma^2), (H)
    return -dist * inv.view(1, -1, *([1] * (dist.dim() - 2)))


def keep_top_k(scores, valid, k):
    """Scores outside `valid` and beyond the k largest of each row become -inf. Among equal scores
    the earlier key (lower column: keys are ordered oldest first) is kept."""
    masked = scores.masked_fill(~valid, -math.inf)
    if k >= scores.size(-1):
        return masked
    order = torch.sort(masked, dim=-1, descending=True, stable=True).indices
    keep = torch.zeros_like(masked, dtype=torch.bool).scatter_(-1, order[..., :k], True)
    return masked.masked_fill(~(keep & valid), -math.inf)


def krause_attention(q, k, v, log_sigma, window, top_k):
    """Per query i: keys j in i-W+1..i, the K nearest kept, softmax of their RBF scores. Queries go
    in blocks of W against the keys from W-1 before the block to its end, never a T x T matrix."""
    B, H, T, D = q.shape
    out = torch.empty(B, H, T, D, dtype=torch.float32)
    for start in range(0, T, window):
        stop = min(start + window, T)
        first = max(start - window + 1, 0)
        i = torch.arange(start, stop).view(-1, 1)   # queries of the block
        j = torch.arange(first, stop).view(1, -1)   # keys they may see, oldest first
        valid = (j <= i) & (j > i - window)
        s = krause_scores(q[:, :, start:stop], k[:, :, first:stop], log_sigma)
        w = torch.softmax(keep_top_k(s, valid, top_k), dim=-1)
        out[:, :, start:stop] = w @ v[:, :, first:stop].float()
    return out.to(v.dtype)


def softmax_attention(q, k, v):
    """Causal scaled dot product: softmax(q.k / sqrt(D)) over keys j <= i."""
    T = q.size(2)
    s = q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.size(-1))
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), -math.inf)
    return (torch.softmax(s, dim=-1) @ v.float()).to(v.dtype)


def phi(x):
    return F.elu(x) + 1.0


def linear_attention(q, k, v):
    """phi(q_i) S_i / (phi(q_i) z_i + eps), S_i = sum_{j<=i} phi(k_j) v_j^T, z_i = sum_{j<=i} phi(k_j),
    written as the causally masked matrix phi(q) phi(k)^T (the same sums, reordered)."""
    T = q.size(2)
    a = (phi(q.float()) @ phi(k.float()).transpose(-1, -2)).tril()   # (B, H, T, T)
    return (a @ v.float() / (a.sum(-1, keepdim=True) + LINEAR_EPS)).to(v.dtype)

# ---- The network ---------------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c.d_model
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        if c.attention == "krause":
            self.log_sigma = nn.Parameter(torch.full((c.n_heads,), math.log(c.init_sigma)))

    def heads(self, x):  # (B, S, d) -> q, k, v (B, H, S, D)
        B, S, _ = x.shape
        split = lambda t: t.view(B, S, self.c.n_heads, self.c.head_dim).transpose(1, 2)
        return split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))

    def merge(self, y):  # (B, H, S, D) -> (B, S, d)
        return self.out_proj(y.transpose(1, 2).reshape(y.size(0), y.size(2), self.c.d_model))

    def forward(self, x):
        q, k, v = self.heads(x)
        if self.c.attention == "krause":
            y = krause_attention(q, k, v, self.log_sigma, self.c.window, self.c.top_k)
        elif self.c.attention == "softmax":
            y = softmax_attention(q, k, v)
        else:
            y = linear_attention(q, k, v)
        return self.merge(y)

    def empty_cache(self, batch):
        """Krause: a ring of the last W keys and values (slot p mod W); softmax: all T; linear: S, z."""
        H, D, T = self.c.n_heads, self.c.head_dim, self.c.seq_len
        if self.c.attention == "linear":
            return {"S": torch.zeros(batch, H, D, D), "z": torch.zeros(batch, H, D)}
        slots = min(self.c.window, T) if self.c.attention == "krause" else T
        return {"k": torch.zeros(batch, H, slots, D), "v": torch.zeros(batch, H, slots, D)}

    def step(self, x, cache, p):
        """x (B, 1, d) at position p -> (B, 1, d), updating the cache."""
        q, k, v = self.heads(x)  # (B, H, 1, D)
        if self.c.attention == "linear":
            cache["S"] += phi(k.float()).transpose(-1, -2) @ v.float()
            cache["z"] += phi(k.float()).squeeze(2)
            pq = phi(q.float())
            den = (pq.squeeze(2) * cache["z"]).sum(-1).view(q.size(0), q.size(1), 1, 1)
            return self.merge(pq @ cache["S"] / (den + LINEAR_EPS))
        slots = cache["k"].size(2)
        cache["k"][:, :, p % slots] = k.squeeze(2)
        cache["v"][:, :, p % slots] = v.squeeze(2)
        n = min(p + 1, slots)
        if self.c.attention == "softmax":
            s = q @ cache["k"][:, :, :n].transpose(-1, -2) / math.sqrt(self.c.head_dim)
            return self.merge(torch.softmax(s, dim=-1) @ cache["v"][:, :, :n])
        # Krause: the ring rolled so that its slots run oldest first (top-K ties keep the oldest).
        shift = -((p + 1) % slots) if p + 1 >= slots else 0
        keys = cache["k"].roll(shift, dims=2)[:, :, :n]
        values = cache["v"].roll(shift, dims=2)[:, :, :n]
        s = krause_scores(q, keys, self.log_sigma)
        w = torch.softmax(keep_top_k(s, torch.ones_like(s, dtype=torch.bool), self.c.top_k), -1)
        return self.merge(w @ values)


class Block(nn.Module):
    """Pre-LayerNorm: x += drop(attn(LN(x))); x += drop(mlp_drop(fc2(gelu(fc1(LN(x))))))."""

    def __init__(self, c):
        super().__init__()
        d = c.d_model
        self.ln1, self.attn = nn.LayerNorm(d, eps=1e-5), Attention(c)
        self.ln2, self.fc1, self.fc2 = nn.LayerNorm(d, eps=1e-5), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(c.dropout)
        self.mlp_drop = nn.Dropout(c.mlp_dropout)

    def mlp(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, as at::gelu's default

    def forward(self, x):
        h = x + self.drop(self.attn(self.ln1(x)))
        return h + self.drop(self.mlp_drop(self.mlp(self.ln2(h))))

    def step(self, x, cache, p):
        h = x + self.attn.step(self.ln1(x), cache, p)
        return h + self.mlp(self.ln2(h))


class PixelTransformer(nn.Module):
    """Input x[0..T-2], logits for x[1..T-1] (the paper's network), plus a learned prior for x[0]."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_emb = nn.Embedding(VOCAB, c.d_model)
        self.pos_emb = nn.Parameter(torch.zeros(c.seq_len, c.d_model))
        self.emb_drop = nn.Dropout(c.embed_dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model, eps=1e-5)
        self.head = nn.Linear(c.d_model, VOCAB)
        self.prior = nn.Parameter(torch.zeros(VOCAB))

    def forward(self, tokens):
        """tokens (B, S), S <= T-1 -> logits (B, S, 256); logits[:, p] predicts x[p + 1]."""
        h = self.emb_drop(self.tok_emb(tokens) + self.pos_emb[:tokens.size(1)])
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))

    def token_nll(self, images):
        """images (B, T) -> NLL in nats (B, T): column 0 from the prior, column p from the network."""
        x = images.long()
        logits = self(x[:, :-1]).float()
        network = -torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None]).squeeze(-1)
        prior = -torch.log_softmax(self.prior.float(), -1)[x[:, 0]].unsqueeze(1)
        return torch.cat([prior, network], 1)

    @torch.no_grad()
    def bits_per_dim(self, images, batch_size=16):
        """(BPD over all T sub-pixels, BPD over the T-1 the network predicts) of images (N, T)."""
        total = network = 0.0
        for b in range(0, len(images), batch_size):
            nll = self.token_nll(images[b:b + batch_size]).double()
            total += nll.sum().item()
            network += nll[:, 1:].sum().item()
        n, T = len(images), self.c.seq_len
        return total / (n * T * math.log(2)), network / (n * (T - 1) * math.log(2))

    def decode_step(self, caches, tokens, p):
        """Consumes x[p] (B) and returns logits (B, 256) for x[p + 1], from the caches."""
        h = (self.tok_emb(tokens) + self.pos_emb[p]).unsqueeze(1)
        for block, cache in zip(self.blocks, caches):
            h = block.step(h, cache, p)
        return self.head(self.ln_f(h)).squeeze(1)

    @torch.no_grad()
    def sample(self, count, temperature=1.0, seed=0):
        """(count, T) uint8: x[0] from the prior, then each next sub-pixel from softmax(logits / t).
        The uniforms come as in model/sampler.cpp (CPU generator, (T, count) fp64, inverse CDF),
        so a seed draws the images `krause sample --device cpu --precision fp32 --seed` draws."""
        T = self.c.seq_len
        u = torch.rand(T, count, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

        def draw(logits, p):
            cdf = torch.softmax(logits.float() / temperature, -1).double().cumsum(-1)
            return (cdf <= u[p].view(-1, 1) * cdf[:, -1:]).sum(-1).clamp_max(VOCAB - 1)

        out = torch.zeros(count, T, dtype=torch.long)
        out[:, 0] = draw(self.prior.expand(count, VOCAB), 0)
        caches = [block.attn.empty_cache(count) for block in self.blocks]
        for p in range(T - 1):
            out[:, p + 1] = draw(self.decode_step(caches, out[:, p], p), p + 1)
        return out.to(torch.uint8)


def load(path):
    """A PixelTransformer in eval mode, fp32, from one of our checkpoints."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != "krause-studio-checkpoint":
        raise ValueError(f"{path}: not a Krause Studio checkpoint")
    model = PixelTransformer(Config(metadata["model_config"]))
    state = {name: tensors[name].float() for name in model.state_dict()}  # KeyError names a gap
    model.load_state_dict(state)
    return model.eval()


def save(model, path, metadata=None):
    """Writes the model as one of our checkpoints, fp32 (the C++ reader wants no padding rules)."""
    header, blobs, offset = {}, [], 0
    for name, t in model.state_dict().items():
        blob = t.detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {**(metadata or {}), "format": "krause-studio-checkpoint",
                              "format_version": "1", "model_config": model.c.json}
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_idx_images(path, limit=0):
    """(N, T) uint8 images of an IDX file (MNIST layout; .gz read as such)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 0x803:
            raise ValueError(f"{path}: not an IDX image file (magic {magic:#x})")
        n = min(n, limit) if limit else n
        data = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return torch.from_numpy(data.reshape(n, rows * cols).copy())


def write_pgm_grid(path, images, c, columns):
    """Grey images (N, T) as one binary PGM with a 1-pixel gap between them."""
    rows = (len(images) + columns - 1) // columns
    h, w = c.height, c.width
    grid = np.zeros((rows * (h + 1) - 1, columns * (w + 1) - 1), dtype=np.uint8)
    for i, img in enumerate(images.numpy()):
        r, col = divmod(i, columns)
        grid[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = img.reshape(h, w)
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (grid.shape[1], grid.shape[0]) + grid.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--mnist", help="folder with t10k-images-idx3-ubyte.gz: print test bits/dim")
    ap.add_argument("--limit", type=int, default=0, help="first N test images (0: all)")
    ap.add_argument("--sample", type=int, default=0, help="draw this many images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--out", default="samples.pgm")
    a = ap.parse_args()
    model = load(a.checkpoint)
    if a.mnist:
        images = read_idx_images(f"{a.mnist}/t10k-images-idx3-ubyte.gz", a.limit)
        bpd_all, bpd_predicted = model.bits_per_dim(images)
        print(json.dumps({"bpd_all": bpd_all, "bpd_predicted": bpd_predicted, "images": len(images)}))
    if a.sample:
        if model.c.channels != 1:
            raise SystemExit("krause_model.py: --sample writes grey PGM only")
        images = model.sample(a.sample, a.temperature, a.seed)
        write_pgm_grid(a.out, images, model.c, math.ceil(math.sqrt(a.sample)))
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
