"""`python -m dspyops.demo_learning [--workdir DIR]` (what `make demo-learning` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dspyops.demo_learning.run import run_demo

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m dspyops.demo_learning", description=__doc__)
    parser.add_argument("--workdir", default="", help="keep everything here (default: a temporary directory)")
    args = parser.parse_args()
    sys.exit(run_demo(Path(args.workdir) if args.workdir else None))
