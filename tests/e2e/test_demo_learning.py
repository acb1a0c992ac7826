"""`make demo-learning` as users run it (`python -m dspyops.demo_learning`): an optimizer and
two gateways as subprocesses, the offline LM, a SQLite log; exit 0, the scenes printed, and the
log holding the loop: a drift detected on the serving version, a retrain whose gate passed
against it, a canary that ramped step by step and was promoted, and a bad candidate rolled back
by its error-rate guardrail; every decision the gateways' own (actor "system")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from dspyops.eventlog import open_store
from dspyops.events import decode


def test_the_learning_demo_closes_the_loop(tmp_path: Path) -> None:
    sandbox_home = tmp_path / "home"  # the demo must leave a user's home directory untouched
    sandbox_home.mkdir()
    env = dict(os.environ, DSPY_CACHEDIR=str(tmp_path / "cache"), HOME=str(sandbox_home))
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "dspyops.demo_learning", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]

    # what it printed, scene by scene
    assert "the monitor is quiet: no DriftDetected" in out
    detected = re.search(
        r"DriftDetected after \d+ drifted tickets .*?rate ([\d.]+) vs reference ([\d.]+)", out, re.S
    )
    assert detected and float(detected[1]) < float(detected[2])
    assert re.search(
        r"gate: PASSED - 1\.1\.0 scores ([\d.]+) on\s+the held-out feedback, 1\.0\.0 ([\d.]+)", out
    )
    assert re.findall(r"CanaryAdvanced to (\d+)%", out)[:3] == ["25", "50", "75"]
    assert "CanaryEnded, promoted" in out and "CanaryEnded, rolled back" in out
    assert "rolled back by the error_rate guardrail; helpdesk serves 1.1.0" in out
    assert re.search(r"log ok: \d+ events, hash chain intact", out)

    # what the log holds
    store = open_store(str(workdir / "dspyops.db"))
    try:
        stored = store.read(0, 100_000)
    finally:
        store.close()
    events: list[tuple[str, str, Any]] = []
    for event in stored:
        message = decode(event)
        events.append((type(message).__name__, event.actor, message))
    kinds = [kind for kind, _, _ in events]

    drifts = [m for kind, _, m in events if kind == "DriftDetected"]
    assert len(drifts) == 1
    drift = drifts[0]
    assert drift.version == "1.0.0" and drift.signal == "outcome_rate"
    assert drift.statistics.p_value <= 0.05 and drift.statistics.value < drift.statistics.reference
    assert drift.window.n >= 50

    gates = [m for kind, _, m in events if kind == "GateEvaluated"]
    retrain = gates[-1]
    assert retrain.passed and retrain.must_beat == "1.0.0" and retrain.final_score > retrain.must_beat_score
    # the retrain came after the detection
    assert kinds.index("DriftDetected") < len(kinds) - 1 - kinds[::-1].index("GateEvaluated")

    started = [m for kind, _, m in events if kind == "CanaryStarted"]
    assert [s.canary.candidate for s in started] == ["1.1.0", "1.2.0"]
    assert all(list(s.canary.steps) == [10, 25, 50, 75, 100] and s.canary.step_seconds > 0 for s in started)
    good, bad = (s.canary.canary_id for s in started)
    advanced = [m for kind, _, m in events if kind == "CanaryAdvanced" and m.canary_id == good]
    assert [a.percent for a in advanced] == [25, 50, 75]
    ended = {m.canary_id: (actor, m) for kind, actor, m in events if kind == "CanaryEnded"}
    actor, promoted = ended[good]
    assert promoted.promoted and actor == "system"
    assert [(r.version, r.weight) for r in promoted.routes] == [("1.1.0", 1.0)]
    actor, rolled = ended[bad]
    assert not rolled.promoted and actor == "system"
    failed = [g.guardrail for g in rolled.check.guardrails if g.failed]
    assert failed == ["error_rate"] and "error_rate" in rolled.reason
    assert [(r.version, r.weight) for r in rolled.routes] == [("1.1.0", 1.0)]
    # every decision of the loop is the gateways' own
    assert {actor for kind, actor, _ in events if kind in ("DriftDetected", "CanaryAdvanced")} == {"system"}
    assert list(sandbox_home.iterdir()) == []
