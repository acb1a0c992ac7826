"""The `dspyops` CLI run as a user runs it (a subprocess against the demo's services), its
command and output printed: `learn enable`, `learn status`, `predictions explain`, `log verify`."""

from __future__ import annotations

import shlex
import subprocess
import sys

from rich.markup import escape

from dspyops.render.console import console


def dspyops(address_flags: list[str], *args: str) -> tuple[int, str]:
    """Run `dspyops ARGS` with the given --optimizer/--gateway flags; print the command (without
    the addresses, which change every run) and its output; the exit status and the output."""
    shown = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", *address_flags, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = (shown.stdout.strip() + "\n" + shown.stderr.strip()).strip()
    console.print(escape(f"$ dspyops {shlex.join(args)}\n{output}"))
    return shown.returncode, output
