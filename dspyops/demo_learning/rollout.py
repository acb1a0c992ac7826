"""The demo's canaries: the retrained candidate's (started by the learning loop, followed
here: learn.py) and a deliberately bad candidate's, the same program on an LM connection that
refuses every call, canaried with the same schedule and guardrails (rolled back on its error
rate). The gateways decide every step (their canary loop); this only sends traffic and prints
each decision as the log records it."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.rule import Rule

from dspyops.demo_learning.provider import CONNECTION, MODEL
from dspyops.demo_learning.scenes import DEPLOYMENT, NEW_SHARE, PROGRAM, SIGNATURE, Demo
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console

SCHEDULE = (10.0, 25.0, 50.0, 75.0, 100.0)
STEP_SECONDS = 6  # the monitoring period of each step (real time, the gateways' clock)
MAX_ERROR_RATE, MAX_LATENCY_P95_MS = 0.05, 1000.0  # the guardrails besides the outcome test
MIN_SAMPLES = 10
CANARY_TIMEOUT = 90.0  # seconds of traffic before the demo gives up on a canary


def guardrails_line(check: pb.GuardrailCheck) -> str:
    parts = []
    for g in check.guardrails:
        verdict = "FAILED" if g.failed else ("ok" if g.judged else "not judged")
        if g.guardrail == "outcome":
            value = f"{g.value:.3f} vs baseline {g.baseline_value:.3f} (n={g.n}/{g.baseline_n})"
            value += f", p={g.p_value:.3g}"
        else:
            value = f"{g.value:.4g} (n={g.n}, baseline {g.baseline_value:.4g}), limit {g.threshold:g}"
        parts.append(f"{g.guardrail} {value} {verdict}")
    return "; ".join(parts)


def canary_line(event: pb.Event) -> str | None:
    """A printed line for a canary decision (None: not one)."""
    kind = event.payload.WhichOneof("kind")
    if kind == "canary_started":
        c = event.payload.canary_started.canary
        return (
            f"  [{event.position}] CanaryStarted {c.canary_id}: {c.candidate} against {c.baseline}, steps "
            + " -> ".join(f"{p:g}%" for p in c.steps)
            + f", {c.step_seconds} s per step; guardrails: outcome not worse (alpha {c.alpha:g}), "
            f"error rate <= {c.max_error_rate:g}, latency p95 <= {c.max_latency_p95_ms:g} ms"
        )
    if kind == "canary_advanced":
        advanced = event.payload.canary_advanced
        return (
            f"  [{event.position}] CanaryAdvanced to {advanced.percent:g}% (step {advanced.step}): "
            f"{guardrails_line(advanced.check)}"
        )
    if kind == "canary_ended":
        ended = event.payload.canary_ended
        verdict = "promoted" if ended.promoted else "rolled back"
        return f"  [{event.position}] CanaryEnded, {verdict}: {ended.reason}"
    return None


def print_canary(event: pb.Event) -> None:
    line = canary_line(event)
    if line is not None:
        console.print(line)


def follow(demo: Demo, show: Callable[[pb.Event], None] = print_canary) -> pb.CanaryEnded | None:
    """Traffic, and each new event of the deployment shown as the log records it, until a
    canary ends; its end."""
    deadline = time.monotonic() + CANARY_TIMEOUT
    while time.monotonic() < deadline:
        demo.send(20, NEW_SHARE)
        for event in demo.new_events():
            show(event)
            if event.payload.WhichOneof("kind") == "canary_ended":
                return event.payload.canary_ended
    console.print(f"[red]no canary ended within {CANARY_TIMEOUT:g} s[/red]")
    return None


def canary(demo: Demo, candidate: str) -> pb.CanaryEnded | None:
    """Start a scheduled canary of `candidate`, send traffic, print each decision; its end."""
    demo.gw.start_canary(
        DEPLOYMENT,
        candidate,
        steps=SCHEDULE,
        step_seconds=STEP_SECONDS,
        min_samples_per_step=MIN_SAMPLES,
        reason=f"roll out {candidate} safely",
        max_error_rate=MAX_ERROR_RATE,
        max_latency_p95_ms=MAX_LATENCY_P95_MS,
    )
    demo.wait_applied()  # both gateways serve the canary before the traffic starts
    return follow(demo)


def bad_candidate(demo: Demo) -> pb.CanaryEnded | None:
    """The serving program imported again, on the connection whose provider refuses the key."""
    console.print(Rule("6. a bad candidate: the same program on an LM connection whose key was revoked"))
    state_json = demo.opt.export_version(PROGRAM, demo.serving).state_json
    bad = demo.opt.import_program(
        PROGRAM, SIGNATURE, state_json, lm=pb.LMConfig(connection=CONNECTION, model=MODEL)
    )
    console.print(f"{PROGRAM} {bad.version}: {demo.serving}'s program, LM {CONNECTION}/{MODEL} (answers 401)")
    ended = canary(demo, bad.version)
    if ended is None or ended.promoted:
        return None
    return ended
