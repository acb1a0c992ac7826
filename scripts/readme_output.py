"""Regenerate the README's sample output from real runs (`make readme-output`).

Runs `dspyops demo` (a fresh temporary log, the offline LM), `python -m
dspyops.demo_cluster` (a throwaway PostgreSQL, a local Ray cluster, two optimizers and two
gateways) and `python -m dspyops.demo_learning` (the learning loop) and puts what each
printed between its markers in README.md (`<!-- demo-output -->`, `<!-- demo-cluster-output
-->`, `<!-- demo-learning-output -->`) and what `scripts/readme_metrics.py` scraped from both
services' /metrics (`<!-- metrics-output -->`), so the samples cannot go stale. `--only NAME`
regenerates one of them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
WIDTH = "130"  # rich's width for piped output: wide enough for the audit log's columns

# marker name -> (the command as the README shows it, what runs it)
RUNS: dict[str, tuple[str, list[str]]] = {
    "demo": ("make demo", [sys.executable, "-m", "dspyops.cli", "demo"]),
    "demo-cluster": ("make demo-cluster", [sys.executable, "-m", "dspyops.demo_cluster"]),
    "demo-learning": ("make demo-learning", [sys.executable, "-m", "dspyops.demo_learning"]),
    # its output is the curl lines themselves: no command line above them
    "metrics": ("", [sys.executable, str(Path(__file__).resolve().parent / "readme_metrics.py")]),
}


def replace_block(text: str, name: str, shown: str, output: str) -> str:
    start, end = f"<!-- {name}-output:start -->", f"<!-- {name}-output:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md lacks the markers {start} ... {end}")
    command = f"$ {shown}\n" if shown else ""
    block = f"{start}\n```text\n{command}{output.rstrip()}\n```\n{end}"
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(RUNS))
    only = parser.parse_args().only
    names = [only] if only else list(RUNS)
    env = dict(os.environ, COLUMNS=WIDTH)
    for name in names:
        shown, command = RUNS[name]
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if run.returncode != 0:
            sys.stderr.write(run.stdout[-2000:] + run.stderr[-4000:])
            return run.returncode
        README.write_text(replace_block(README.read_text(), name, shown, run.stdout))
        print(f"README.md: {name} output replaced ({len(run.stdout.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
