"""A deployment's learning loop as people read it: its policy, its events in the audit log,
`learn status`, and the lineage lines of `explain`."""

from __future__ import annotations

from datetime import UTC, datetime

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.render.drift import detected_text


def utc_time(us: int) -> str:
    """Unix microseconds as a UTC date and time ("-" for 0)."""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S") if us else "-"


def policy_text(p: pb.LearningPolicy) -> str:
    what = f"preset {p.preset}" if p.preset else p.optimizer or "(no optimizer)"
    triggers = [
        t
        for t, on in (
            ("on drift", p.on_drift),
            (f"every {p.min_new_examples} new labels", p.min_new_examples),
        )
        if on
    ]
    c = p.canary
    steps = ",".join(f"{s:g}" for s in c.steps) or "10,25,50,75,100"
    parts = [
        f"{what}, {' and '.join(triggers) or 'no trigger'}",
        f"holdout {p.holdout_fraction:g}",
        "gate: beat the serving version"
        + (f" by {p.min_improvement:g}" if p.HasField("min_improvement") else ""),
        f"canary {steps}%" + (f", {c.step_seconds}s per step" if c.step_seconds else ""),
    ]
    limits = [
        f"{name} {value:g}"
        for name, value in (
            ("max error rate", c.max_error_rate),
            ("max latency p95 ms", c.max_latency_p95_ms),
            ("max cost", c.max_cost_per_prediction),
        )
        if value
    ]
    if limits:
        parts.append(", ".join(limits))
    if p.min_interval_seconds:
        parts.append(f"at least {p.min_interval_seconds}s between retrains")
    b = p.budget
    if b.max_lm_calls or b.max_cost_usd:
        parts.append(f"budget {b.max_lm_calls or '-'} LM calls, ${b.max_cost_usd:g}")
    return "; ".join(parts)


def policy_set_text(p: pb.LearningPolicySet) -> str:
    if not p.enabled:
        state = "off"
    elif p.paused:
        state = "paused"
    else:
        state = policy_text(p.policy)
    return f"learning on {p.deployment}: {state}" + (f" ({p.reason})" if p.reason else "")


def triggered_text(p: pb.LearningTriggered) -> str:
    f = p.feedback
    why = f"drift at position {p.drift_position}" if p.trigger == "drift" else "new labelled examples"
    return (
        f"retrain {p.run_id} of {p.deployment} ({why}): {p.serving_version} on job {p.base_job_id}'s "
        f"trainset + {f.train_n} feedback examples, {f.holdout_n} held out"
    )


def run_ended_text(p: pb.LearningRunEnded) -> str:
    if p.result == "canary_started":
        passed = f"{p.candidate_version} passed its gate"
        return f"retrain {p.run_id} of {p.deployment}: {passed}, canary {p.canary_id}"
    return f"retrain {p.run_id} of {p.deployment} ended: {p.result}: {p.reason[:100]}"


def _run_lines(title: str, run: gpb.LearningRun) -> list[str]:
    t = run.triggered
    lines = [f"  {title}: {triggered_text(t)} (position {run.triggered_position})"]
    if run.job_id:
        lines.append(
            f"    job {run.job_id}: {run.job_state or '?'}" + (f"; gate: {run.gate}" if run.gate else "")
        )
    else:
        lines.append("    job: not started yet")
    if run.HasField("ended"):
        lines.append(f"    ended: {run_ended_text(run.ended)}")
    return lines


def status_lines(status: gpb.LearningStatus) -> list[str]:
    if not status.HasField("policy"):
        return [f"{status.deployment}: no learning policy"]
    state = "on" if status.enabled and not status.paused else "paused" if status.enabled else "off"
    lines = [
        f"{status.deployment}: learning {state}: {policy_text(status.policy)}",
        f"  {status.idle}" if status.idle else "  a retrain runs",
        f"  new labelled examples since the last run: {status.new_examples}",
    ]
    d = status.drift
    if d.HasField("monitor"):
        signals = ", ".join(
            f"{s.signal} {s.value:.4g}" + (" drifted" if s.drifted else "") for s in d.signals if not s.note
        )
        lines.append(f"  drift monitor on {d.version}: {signals or 'no signal judged yet'}")
    else:
        lines.append("  drift monitor: off")
    if status.HasField("last_detection"):
        at = status.last_detection_position
        lines.append(f"  last detection (position {at}): {detected_text(status.last_detection)}")
    if status.HasField("active"):
        lines += _run_lines("running", status.active)
    if status.HasField("last"):
        lines += _run_lines("last run", status.last)
    if status.HasField("canary"):
        c = status.canary
        lines.append(f"  canary {c.canary_id}: {c.candidate} at {status.canary_percent:g}% (step {c.step})")
    if status.loop:
        lines.append(f"  last tick here: {status.loop}")
    return lines


def lineage_lines(lineage: gpb.LearningLineage) -> list[str]:
    f = lineage.feedback
    lines = [
        f"  retrained by {lineage.run_id} (job {lineage.job_id}) from {lineage.serving_version}, "
        f"trigger {lineage.trigger} (position {lineage.triggered_position})"
    ]
    if lineage.HasField("detection"):
        d = lineage.detection
        lines.append(f"  drift detection at position {lineage.drift_position}: {detected_text(d)}")
    lines.append(
        f"  feedback: {f.train_n} train / {f.holdout_n} held out, labelled {utc_time(f.first_us)} .. "
        f"{utc_time(f.last_us)} UTC, train sha256 {f.train_digest[:12]}, holdout {f.holdout_digest[:12]}"
    )
    lines.append(f"  base trainset: job {lineage.base_job_id}")
    return lines
