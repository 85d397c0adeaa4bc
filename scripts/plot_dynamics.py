#!/usr/bin/env python3
"""Plots the per-layer token-dynamics measures of `krause dynamics --json` (one or more JSON
objects, their models overlaid) as small PNGs, one per measure: OUT_PREFIX-cosine.png,
-consensus.png, -rank.png, -clusters.png, -sink.png. Needs matplotlib (Debian:
python3-matplotlib).

Usage: plot_dynamics.py OUT_PREFIX RESULT.json [RESULT2.json ...]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
STYLES = [":", "-", "--", "-."]


def label(model):
    return "%s (%s)" % (model["attention"], model["checkpoint"].split("/")[-1])


def state_axis(ax, n):
    ax.set_xticks(range(n))
    ax.set_xticklabels(["emb"] + [str(i) for i in range(n - 1)])
    ax.set_xlabel("state: embedding, then after block i")
    ax.grid(alpha=0.3)


def plot(result, prefix, name, title, value, attention=False):
    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=90)
    n = 0
    for m, model in enumerate(result["models"]):
        layers = model["layers"]
        n = max(n, len(layers))
        xs = [i for i in range(len(layers)) if not attention or i > 0]
        ax.plot(xs, [value(layers[i]) for i in xs], "o-", color=COLORS[m], label=label(model))
    state_axis(ax, n)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig("%s-%s.png" % (prefix, name))
    plt.close(fig)


def plot_clusters(result, prefix):
    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=90)
    n = 0
    for m, model in enumerate(result["models"]):
        layers = model["layers"]
        n = max(n, len(layers))
        for f, frac in enumerate(result["eps_fractions"]):
            ax.plot(range(len(layers)), [l["clusters"][f] for l in layers],
                    STYLES[f % len(STYLES)], marker="o", markersize=3, color=COLORS[m],
                    label="%s, eps %.2f" % (model["attention"], frac))
    state_axis(ax, n)
    ax.set_yscale("log")
    ax.set_title("clusters (eps = fraction x median distance)", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig("%s-clusters.png" % prefix)
    plt.close(fig)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefix = sys.argv[1]
    result = {"models": []}
    for path in sys.argv[2:]:
        with open(path) as f:
            one = json.load(f)
        if result["models"] and one["eps_fractions"] != result["eps_fractions"]:
            sys.exit("%s: other eps fractions than the first file" % path)
        result["eps_fractions"] = one["eps_fractions"]
        result["models"] += one["models"]
    plot(result, prefix, "cosine", "mean pairwise cosine of token states",
         lambda l: l["cosine"])
    plot(result, prefix, "consensus", "distance to consensus ||X - mean|| / ||X||",
         lambda l: l["consensus_distance"])
    plot(result, prefix, "rank", "effective rank of the centred states",
         lambda l: l["effective_rank"])
    plot_clusters(result, prefix)
    plot(result, prefix, "sink", "sink mass (attention on position 0)",
         lambda l: l["attention"]["sink_mass"], attention=True)


if __name__ == "__main__":
    main()
