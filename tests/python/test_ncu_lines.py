"""scripts/ncu_lines.py on a small source page written here in Nsight Compute's CSV layout: an
inlined instruction counts once, under its own line and not the line that inlines it; the totals
are those of the distinct instructions; --kernel keeps one function; bad input fails with one line.
Needs python3 only.

    python3 test_ncu_lines.py
"""
import csv
import io
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOOL = os.path.join(ROOT, "scripts", "ncu_lines.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import ncu_lines  # noqa: E402
from common import check, finish  # noqa: E402

HEADER = ["Line No", "Source", "Address", "Source", "Warp Stall Sampling (All Samples)",
          "Warp Stall Sampling (Not-issued Samples)", "# Samples", "Instructions Executed"]


def page(kernel_rows):
    """kernel_rows: {function: [(file, [(line, text, [(address, sass, samples, instr)])])]}."""
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL)
    for function, files in kernel_rows.items():
        for path, lines in files:
            w.writerow(["File Path", path])
            w.writerow(["Function Name", function])
            w.writerow(HEADER)
            for number, text, sass in lines:
                total_s = sum(s for _, _, s, _ in sass)
                total_i = sum(i for _, _, _, i in sass)
                w.writerow([str(number), text, "-", "-", str(total_s), "0", str(total_s),
                            f"{total_i:,}"])
                for address, code, s, i in sass:
                    w.writerow(["", "", address, code, str(s), "0", str(s), f"{i:,}"])
    return out.getvalue()


# Kernel A: caller.cu:10 inlines helper.cuh:3, whose two instructions it lists again beside its
# own one; helper.cuh:3 lists only those two. Kernel B: one line, one instruction.
ROWS = {
    "void kernel_a(Params)": [
        ("/src/caller.cu", [(10, "y = helper(x);", [("0x10", "FMUL R1", 5, 1000),
                                                      ("0x20", "FADD R2", 1, 2000),
                                                      ("0x30", "STG [R4]", 7, 300)])]),
        ("/src/helper.cuh", [(3, "return a * b + c;", [("0x10", "FMUL R1", 5, 1000),
                                                         ("0x20", "FADD R2", 1, 2000)])]),
    ],
    "void kernel_b(Params)": [
        ("/src/other.cu", [(7, "z = 0;", [("0x90", "MOV R0", 2, 5000)])]),
    ],
}

per_line, n = ncu_lines.read(csv.reader(io.StringIO(page(ROWS))), "kernel_a")
check(n == 3, f"kernel_a: 3 distinct instructions (got {n})")
helper = per_line.get(("/src/helper.cuh", 3, "return a * b + c;"))
caller = per_line.get(("/src/caller.cu", 10, "y = helper(x);"))
check(helper == [3000, 6], f"the inlined pair counts under helper.cuh:3 (got {helper})")
check(caller == [300, 7], f"caller.cu:10 keeps only its own store (got {caller})")
check(sum(v[0] for v in per_line.values()) == 3300,
      "instructions total those of the distinct addresses, not the CSV's 6,600")

both, n_all = ncu_lines.read(csv.reader(io.StringIO(page(ROWS))), "")
check(n_all == 4 and sum(v[0] for v in both.values()) == 8300,
      f"no filter: both kernels (got {n_all} instructions)")

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "page.csv")
    with open(path, "w") as f:
        f.write(page(ROWS))
    run = subprocess.run([sys.executable, TOOL, path, "--kernel", "kernel_a", "--top", "1"],
                         capture_output=True, text=True)
    lines = run.stdout.splitlines()
    check(run.returncode == 0 and "3,300 executed" in lines[0] and "13 stall samples" in lines[0]
          and len(lines) == 3 and "90.9%" in lines[2] and "helper.cuh:3" in lines[2],
          f"the command prints the totals and the top line (got {run.stdout!r})")
    # Bad input: (page or None for the page above, arguments, what the one error line names).
    bad = [(None, ["--kernel", "missing"], "no SASS rows for missing", "an unknown kernel"),
           ('"File Path","/src/a.cu"\n"Function Name","void k()"\n"","","0x10","MOV R0","1"\n',
            [], "header", "a page without its header row"),
           ('"Line No","Source","Address"\n', [], "Instructions Executed",
            "a page without the counters")]
    for text, args, named, what in bad:
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
        run = subprocess.run([sys.executable, TOOL, path] + args, capture_output=True, text=True)
        check(run.returncode != 0 and run.stderr.strip().count("\n") == 0 and named in run.stderr,
              f"{what} is refused in one line (got {run.stderr.strip()[-120:]!r})")

sys.exit(finish())
