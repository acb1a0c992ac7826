"""`make demo-cluster` as users run it (`python -m dspyops.demo_cluster`): PostgreSQL, a Ray
head, two optimizer replicas and two gateways as real processes; exit 0, the job killed with
optimizer-1 finished by optimizer-2, the chain verified, nothing left running or on disk."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from dspyops.localcluster import processes_under


def test_demo_cluster_survives_a_killed_optimizer_and_cleans_up(tmp_path: Path) -> None:
    sandbox_home = tmp_path / "home"  # the demo must leave a user's home directory untouched
    sandbox_home.mkdir()
    env = dict(os.environ, HOME=str(sandbox_home))
    env.pop("COLUMNS", None)  # piped: the console's fixed wide width, so lines do not wrap
    env.pop("DSPY_CACHEDIR", None)  # as a user runs it: the demo keeps DSPy's cache out of HOME itself
    result = subprocess.run(
        [sys.executable, "-m", "dspyops.demo_cluster"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]
    # the loop on both replicas and both gateways
    rows = re.findall(r"│ (BootstrapFewShot|MIPROv2)\s+│ (\S+)\s+│ ([\d.]+)\s+│ ([\d.]+)\s+│", out)
    assert [r[0] for r in rows] == ["BootstrapFewShot", "MIPROv2"]
    assert re.search(r"(\d+) of \1 users got the same version from both gateways", out)
    assert re.search(r"(\d+) of \1 outcomes counted", out)
    # the kill of the replica that ran the job, and the takeover by the other, on the record
    first = re.search(r"claimed by \S+ \(attempt 1, fence \d+\) \((optimizer-[12])\)", out)
    assert first, out[-4000:]
    victim = first.group(1)
    survivor = next(name for name in ("optimizer-1", "optimizer-2") if name != victim)
    assert re.search(rf"kill -9 \d+ \({victim}\) after trial \d+", out)
    assert re.search(r"retry, attempt 2: ", out)
    assert re.search(rf"claimed by \S+ \(attempt 2, fence \d+\) \({survivor}\)", out)
    done = re.search(
        rf"{survivor} claimed the job ([\d.]+) s after the kill and completed it: version (\S+), .*\n"
        r"the retry replayed (\d+) LM calls",
        out,
    )
    assert done, out[-4000:]
    assert int(done.group(3)) > 0
    assert re.search(r"log ok: \d+ events, hash chain intact", out)
    # everything stopped and removed
    root = re.search(r"0 processes were left to kill; (\S+) removed", out)
    assert root, out[-2000:]
    assert not Path(root.group(1)).exists()
    assert processes_under(Path(root.group(1))) == []
    assert list(sandbox_home.iterdir()) == []
