"""What the Python tests share: exit 77, CTest's "skipped", with the reason, and torch or a skip."""
import sys

SKIP = 77


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def require_torch():
    try:
        import torch
    except ImportError:
        skip("python3-torch is not installed (apt-get install python3-torch)")
    return torch
