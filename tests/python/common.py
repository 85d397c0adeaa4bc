"""What the Python tests share: exit 77, CTest's "skipped", with the reason; torch or a skip; and
checks that print each outcome and collect the failures for the exit status."""
import sys

SKIP = 77
failures = []


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def require_torch():
    try:
        import torch
    except ImportError:
        skip("python3-torch is not installed (apt-get install python3-torch)")
    return torch


def check(ok, message):
    print(("ok    " if ok else "FAIL  ") + message)
    if not ok:
        failures.append(message)


def finish():
    """The exit status of the checks so far: 0 when all passed, after a summary line."""
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0
