"""`make demo-learning` as users run it (`python -m dspyops.demo_learning`): an optimizer and
two gateways as subprocesses, the offline LM, a SQLite log; exit 0, the scenes printed, and the
log holding the loop: the learning policy set through the CLI, a drift detected on the serving
version, the loop's retrain (LearningTriggered, a job naming the run, its gate passed against
the serving version, LearningRunEnded with its canary), a canary that ramped step by step and
was promoted, `explain` walking back to the run and its feedback window, and a bad candidate
rolled back by its error-rate guardrail; every decision the gateways' own (actor "system")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from dspyops.eventlog import StoredEvent, open_store
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
    assert "$ dspyops learn enable helpdesk --optimizer LabeledFewShot --param k=256 --holdout 0.3" in out
    detected = re.search(
        r"DriftDetected after \d+ drifted tickets .*?rate ([\d.]+) vs reference ([\d.]+)", out, re.S
    )
    assert detected and float(detected[1]) < float(detected[2])
    assert re.search(r"\] LearningTriggered run-\w+: trigger drift", out)
    assert re.search(
        r"gate: PASSED - the candidate scores ([\d.]+) on the held-out feedback, 1\.0\.0 ([\d.]+)", out
    )
    assert re.search(r"\] LearningRunEnded run-\w+: canary_started; 1\.1\.0", out)
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
    events: list[tuple[str, str, Any, StoredEvent]] = []
    for event in stored:
        message = decode(event)
        events.append((type(message).__name__, event.actor, message, event))
    kinds = [kind for kind, _, _, _ in events]

    # one detection, of 1.0.0 (1.1.0's reference, its job's final score 1.000, is taken by the
    # rule of succession, so its first wrong answer is no drift)
    detections = [(m, e.position) for kind, _, m, e in events if kind == "DriftDetected"]
    assert len(detections) == 1
    drift, drift_position = detections[0]
    assert drift.version == "1.0.0" and drift.signal == "outcome_rate"
    assert drift.statistics.p_value <= 0.05 and drift.statistics.value < drift.statistics.reference
    assert drift.window.n >= 50

    # the learning policy, set once through the CLI: the drift detection triggers the retrain
    (policy,) = [m for kind, _, m, _ in events if kind == "LearningPolicySet"]
    assert policy.enabled and not policy.paused and policy.deployment == "helpdesk"
    p = policy.policy
    assert p.optimizer == "LabeledFewShot" and p.params["k"] == 256 and p.on_drift
    assert p.min_new_examples == 0 and p.holdout_fraction == 0.3 and p.min_interval_seconds == 3600
    assert list(p.canary.steps) == [10, 25, 50, 75, 100] and p.canary.step_seconds == 6
    assert p.canary.max_error_rate == 0.05 and p.canary.max_latency_p95_ms == 1000
    assert p.canary.min_samples_per_step == 10

    # one retrain, by the loop, after the detection, on the labelled feedback
    (triggered,) = [(actor, m, e.position) for kind, actor, m, e in events if kind == "LearningTriggered"]
    actor, run, run_position = triggered
    assert actor == "system" and run.trigger == "drift" and run.serving_version == "1.0.0"
    window = run.feedback
    assert run.drift_position == drift_position and window.train_n > window.holdout_n > 0
    assert kinds.index("DriftDetected") < kinds.index("LearningTriggered")
    # its job names the run, learns from 1.0.0's job's trainset, and its gate passed against 1.0.0
    jobs = [(m, e.stream) for kind, _, m, e in events if kind == "JobAccepted" and m.HasField("learning")]
    assert len(jobs) == 1
    accepted, job_stream = jobs[0]
    assert accepted.learning.run_id == run.run_id and accepted.learning.deployment == "helpdesk"
    assert accepted.job_id == job_stream.removeprefix("job-")
    base_job = next(m for kind, _, m, _ in events if kind == "JobAccepted" and not m.HasField("learning"))
    assert run.base_job_id == base_job.job_id
    (gate,) = [m for kind, _, m, e in events if kind == "GateEvaluated" and e.stream == job_stream]
    assert gate.passed and gate.must_beat == "1.0.0" and gate.final_score > gate.must_beat_score

    started = [(actor, m) for kind, actor, m, _ in events if kind == "CanaryStarted"]
    assert [s.canary.candidate for _, s in started] == ["1.1.0", "1.2.0"]
    assert all(
        list(s.canary.steps) == [10, 25, 50, 75, 100] and s.canary.step_seconds > 0 for _, s in started
    )
    assert started[0][0] == "system"  # the loop started the retrained candidate's canary
    good, bad = (s.canary.canary_id for _, s in started)
    (ended_run,) = [(actor, m) for kind, actor, m, _ in events if kind == "LearningRunEnded"]
    actor, run_end = ended_run
    assert actor == "system" and run_end.run_id == run.run_id and run_end.result == "canary_started"
    assert run_end.job_id == accepted.job_id and run_end.candidate_version == "1.1.0"
    assert run_end.canary_id == good
    # the canary and the run's end are one batch: no traffic on 1.1.0 before its gate passed
    assert kinds.index("CanaryStarted") + 1 == kinds.index("LearningRunEnded")
    advanced = [m for kind, _, m, _ in events if kind == "CanaryAdvanced" and m.canary_id == good]
    assert [a.percent for a in advanced] == [25, 50, 75]
    ended = {m.canary_id: (actor, m) for kind, actor, m, _ in events if kind == "CanaryEnded"}
    actor, promoted = ended[good]
    assert promoted.promoted and actor == "system"
    assert [(r.version, r.weight) for r in promoted.routes] == [("1.1.0", 1.0)]
    actor, rolled = ended[bad]
    assert not rolled.promoted and actor == "system"
    failed = [g.guardrail for g in rolled.check.guardrails if g.failed]
    assert failed == ["error_rate"] and "error_rate" in rolled.reason
    assert [(r.version, r.weight) for r in rolled.routes] == [("1.1.0", 1.0)]
    # every decision of the loop is the gateways' own
    decisions = ("DriftDetected", "LearningTriggered", "LearningRunEnded", "CanaryAdvanced")
    assert {actor for kind, actor, _, _ in events if kind in decisions} == {"system"}

    # `learn status` and the lineage `explain` walks, from a prediction of 1.1.0
    assert f"last run: retrain {run.run_id} of helpdesk (drift at position {drift_position})" in out
    assert f"ended: retrain {run.run_id} of helpdesk: 1.1.0 passed its gate, canary {good}" in out
    assert re.search(r"prediction \w+ on helpdesk: recorded 1\.1\.0 .*reproduced", out)
    assert (
        f"retrained by {run.run_id} (job {accepted.job_id}) from 1.0.0, trigger drift "
        f"(position {run_position})"
    ) in out
    lineage = re.search(
        r"feedback: (\d+) train / (\d+) held out, labelled .*?train sha256 (\w+), holdout (\w+)", out, re.S
    )
    assert lineage, out[-3000:]
    assert (int(lineage[1]), int(lineage[2])) == (window.train_n, window.holdout_n)
    assert window.train_digest.startswith(lineage[3]) and window.holdout_digest.startswith(lineage[4])
    assert f"base trainset: job {base_job.job_id}" in out
    assert list(sandbox_home.iterdir()) == []
