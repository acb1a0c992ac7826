"""Regenerate the README's sample output from a real run (`make readme-output`).

Runs `dspyops demo` on a fresh temporary log with the offline LM and puts what it printed
between the `<!-- demo-output -->` markers of README.md, so the sample cannot go stale.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- demo-output:start -->", "<!-- demo-output:end -->"
WIDTH = "130"  # rich's width for piped output: wide enough for the audit log's columns


def main() -> int:
    env = dict(os.environ, COLUMNS=WIDTH)
    run = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "demo"], capture_output=True, text=True, env=env, timeout=600
    )
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-2000:] + run.stderr[-4000:])
        return run.returncode
    text = README.read_text()
    if START not in text or END not in text:
        sys.stderr.write(f"README.md lacks the markers {START} ... {END}\n")
        return 1
    block = f"{START}\n```text\n$ make demo\n{run.stdout.rstrip()}\n```\n{END}"
    README.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
    print(f"README.md: demo output replaced ({len(run.stdout.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
