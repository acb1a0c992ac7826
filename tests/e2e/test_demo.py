"""`dspyops demo` as users run it: both services as subprocesses, the whole loop, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_loop_and_optimization_helps(tmp_path: Path) -> None:
    sandbox_home = tmp_path / "home"  # the demo must leave a user's home directory untouched
    sandbox_home.mkdir()
    env = dict(os.environ, DSPY_CACHEDIR=str(tmp_path / "cache"), HOME=str(sandbox_home))
    result = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    rows = re.findall(r"│ (BootstrapFewShot|MIPROv2)\s+│ (\S+)\s+│ ([\d.]+)\s+│ ([\d.]+)\s+│", out)
    # the one-predictor router, then the two-stage triage program (MIPROv2 instruction-only first)
    assert [r[0] for r in rows] == ["BootstrapFewShot", "MIPROv2", "MIPROv2", "BootstrapFewShot"]
    for _, _, baseline, optimized in rows:
        assert float(optimized) > float(baseline)
    assert "promoted to production" in out and "(sticky)" in out
    # the multi-stage program served with its trace, kept and explained
    assert re.search(r"corpus help-centre: 32 articles", out)
    assert re.search(r"│ search\s+│ Retrieve\s+│", out) and re.search(r"│ classify\s+│ Predict\s+│", out)
    assert re.search(
        r"explain \w+: ticket-triage 1\.0\.0, classify on offline; 3 module calls kept; "
        r"decision reproduced: True",
        out,
    )
    assert re.search(r"hash chain: intact over \d+ events", out)
    assert (tmp_path / "demo" / "dspyops.db").exists()
    assert list(sandbox_home.iterdir()) == []
