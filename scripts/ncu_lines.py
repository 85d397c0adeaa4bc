#!/usr/bin/env python3
"""Where a kernel's instructions and stalls go, per source line, from Nsight Compute's source page.

Profile with source counters and the kernels' -lineinfo (the CUDA build has it), export the source
page as CSV, then read it:

    ncu --section SourceCounters --import-source yes --kernel-name regex:forward_mma \\
        --launch-skip 1 --launch-count 1 -o fwd build-cuda/app/krause bench --what op ...
    ncu --import fwd.ncu-rep --page source --csv --print-source cuda,sass > fwd.csv
    scripts/ncu_lines.py fwd.csv --kernel forward_mma --top 30

The CSV lists every SASS instruction under each source line it belongs to, and an inlined
function's instruction belongs both to its own line and to the lines that inline it, so summing the
CSV counts instructions several times over. Here each instruction (by address) counts once, under
the most specific of its lines: the one that lists the fewest instructions. The total then equals
the kernel's executed instructions.

Usage: ncu_lines.py CSV [--kernel SUBSTRING] [--top N]
"""
import argparse
import csv
import sys

INSTRUCTIONS = "Instructions Executed"
SAMPLES = "Warp Stall Sampling (All Samples)"


def number(text):
    text = text.replace(",", "").strip()
    return int(text) if text.isdigit() else 0


def read(rows, kernel):
    """Per source line (file, line, text): [instructions, stall samples], and the totals."""
    path = function = None
    columns = {}
    line = None
    lines_of = {}  # address -> the source lines that list it
    counts = {}  # address -> (instructions, samples)
    members = {}  # source line -> how many addresses it lists
    for row in rows:
        if not row:
            continue
        if row[0] == "File Path":
            path, line = row[1], None
            continue
        if row[0] == "Function Name":
            function, line = row[1], None
            continue
        if row[0] == "Line No":
            columns = {name: i for i, name in enumerate(row)}
            missing = [c for c in (INSTRUCTIONS, SAMPLES) if c not in columns]
            if missing:
                raise ValueError(f"no column {missing[0]!r}: export with --page source --csv")
            continue
        if kernel and (function is None or kernel not in function):
            continue
        if row[0] != "":
            line = (path, int(row[0]), row[1].strip())
            members.setdefault(line, 0)
            continue
        if not columns:
            raise ValueError("no \"Line No\" header row: export with --page source --csv")
        if line is None or len(row) <= max(columns.values()):
            continue
        address = row[2]
        counts[address] = (number(row[columns[INSTRUCTIONS]]), number(row[columns[SAMPLES]]))
        lines_of.setdefault(address, []).append(line)
        members[line] += 1
    per_line = {}
    for address, lines in lines_of.items():
        own = min(lines, key=lambda ln: members[ln])
        total = per_line.setdefault(own, [0, 0])
        total[0] += counts[address][0]
        total[1] += counts[address][1]
    return per_line, len(counts)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="ncu --page source --csv --print-source cuda,sass output")
    parser.add_argument("--kernel", default="", help="only functions whose name contains this")
    parser.add_argument("--top", type=int, default=40, help="lines to print (default 40)")
    args = parser.parse_args(argv)
    try:
        with open(args.csv, newline="") as f:
            per_line, n_addresses = read(csv.reader(f), args.kernel)
    except (OSError, ValueError) as e:
        sys.exit(f"ncu_lines: {args.csv}: {e}")
    if not per_line:
        sys.exit(f"ncu_lines: no SASS rows{' for ' + args.kernel if args.kernel else ''} in "
                 f"{args.csv}")
    instructions = sum(v[0] for v in per_line.values())
    samples = sum(v[1] for v in per_line.values())
    print(f"{n_addresses} SASS instructions, {instructions:,} executed (warp level), "
          f"{samples:,} stall samples")
    print(f"{'M instr':>8} {'share':>6} {'stalls':>6}  line")
    ranked = sorted(per_line.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))
    for (path, number_, text), (n, s) in ranked[:args.top]:
        name = path.rsplit("/", 1)[-1] if path else "?"
        print(f"{n / 1e6:8.1f} {100 * n / max(instructions, 1):5.1f}% "
              f"{100 * s / max(samples, 1):5.1f}%  {name}:{number_}  {text[:80]}")


if __name__ == "__main__":
    main(sys.argv[1:])
