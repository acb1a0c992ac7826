"""The demo's learning scenes, driven by the deployment's learning policy: the gateways'
learning loop (gateway_svc.learning) triggers the retrain, starts its job on the optimizer,
reads the gate's verdict and starts the canary; the gateways' canary loop ramps and promotes.
This module only enables the policy (`dspyops learn enable`, as a user types it), keeps the
traffic flowing, and prints what the loop appends as the log records it; then `learn status`
and `predictions explain` of a prediction of the retrained version (its lineage).

The policy: LabeledFewShot k=256 (the offline LM answers with its nearest demo, so showing it
the feedback is how it learns), a hashed 30% of the feedback held out (the valset and the
gate's slice), must beat the serving version, the canary schedule and guardrails of the bad
candidate's; triggered by the drift detection, so explain walks back to it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from rich.rule import Rule

from dspyops.demo_learning.rollout import (
    MAX_ERROR_RATE,
    MAX_LATENCY_P95_MS,
    MIN_SAMPLES,
    SCHEDULE,
    STEP_SECONDS,
    canary_line,
    follow,
)
from dspyops.demo_learning.scenes import BATCH, DEPLOYMENT, NEW_SHARE, OPTIMIZER, PARAMS, Demo
from dspyops.demo_learning.shell import dspyops
from dspyops.demo_learning.traffic import Sent
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console
from dspyops.render.jobs import render_job_events
from dspyops.render.learning import utc_time

# the retrain starts on the drift detection; its valset is a hashed 30% of the feedback, so
# both sides hold some of the drifted tickets labelled so far
HOLDOUT = 0.3
MIN_INTERVAL_MINUTES = 60  # no second retrain during the demo (the canaries would block it anyway)
PAUSE = 0.1  # seconds between the background traffic's batches (the job shares the 2 cores)
TRIGGER_TIMEOUT = 120.0  # seconds of traffic before the demo gives up on the loop's trigger


def enable(demo: Demo) -> bool:
    """`dspyops learn enable` on the deployment: the loop retrains on the next drift detection."""
    console.print(Rule("2. learn enable: retrain on labelled feedback, gate, canary, by the gateways' loop"))
    params = [arg for key, value in PARAMS.items() for arg in ("--param", f"{key}={value}")]
    code, _ = dspyops(
        demo.cli_flags,
        *("learn", "enable", DEPLOYMENT, "--optimizer", OPTIMIZER, *params),
        *("--holdout", f"{HOLDOUT:g}"),
        *("--canary-steps", ",".join(f"{p:g}" for p in SCHEDULE), "--step-minutes", f"{STEP_SECONDS / 60:g}"),
        *("--min-samples", str(MIN_SAMPLES), "--max-error-rate", f"{MAX_ERROR_RATE:g}"),
        *(
            "--max-latency-p95",
            f"{MAX_LATENCY_P95_MS:g}",
            "--min-interval-minutes",
            str(MIN_INTERVAL_MINUTES),
        ),
        *("--reason", "learn the tickets production labels"),
    )
    demo.enabled_position = demo.opt.read_log(0, 1).head  # the loop's events come after it
    return code == 0


def learning_line(event: pb.Event) -> str | None:
    """A printed line for an event of the loop (None: not one)."""
    kind = event.payload.WhichOneof("kind")
    if kind == "learning_triggered":
        t = event.payload.learning_triggered
        f = t.feedback
        return (
            f"  [{event.position}] LearningTriggered {t.run_id}: trigger {t.trigger}, {t.reason}; feedback "
            f"window: {f.train_n} examples to train on + {f.holdout_n} held out (a hashed "
            f"{f.holdout_fraction:.0%}), labelled {utc_time(f.first_us)} .. {utc_time(f.last_us)} UTC; "
            f"base trainset: job {t.base_job_id}"
        )
    if kind == "learning_run_ended":
        e = event.payload.learning_run_ended
        return (
            f"  [{event.position}] LearningRunEnded {e.run_id}: {e.result}; {e.candidate_version} "
            f"{e.final_score:.3f} vs {e.must_beat_score:.3f} ({e.gate}); canary {e.canary_id or '-'}"
        )
    return canary_line(event)


def _show(demo: Demo, event: pb.Event) -> None:
    """Print an event of the loop; keep the retrain's trigger and end."""
    line = learning_line(event)
    if line is not None:
        console.print(line)
    kind = event.payload.WhichOneof("kind")
    if kind == "learning_triggered":
        demo.triggered = event.payload.learning_triggered
    elif kind == "learning_run_ended":
        demo.run_ended = event.payload.learning_run_ended


@contextlib.contextmanager
def flowing(demo: Demo) -> Iterator[None]:
    """Traffic in the background (while the demo blocks on something else, e.g. WatchJob)."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def send() -> None:
        try:
            while not stop.wait(PAUSE):
                demo.send(10, NEW_SHARE)
        except BaseException as exc:  # re-raised in the demo's thread
            failed.append(exc)

    thread = threading.Thread(target=send, name="traffic", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
    if failed:
        raise failed[0]


def _job_of(demo: Demo, run_id: str, deadline: float) -> str:
    """The run's job id, from `learn status` (the job the loop started; "" : none in time)."""
    while time.monotonic() < deadline:
        status = demo.gw.get_learning_status(DEPLOYMENT)
        for run in (status.active, status.last):
            if run.triggered.run_id == run_id and run.job_id:
                return run.job_id
        demo.send(10, NEW_SHARE)
    return ""


def _watch(demo: Demo, job_id: str) -> pb.GateEvaluated | None:
    """The job's progress as it runs (WatchJob), traffic flowing; its gate's verdict."""
    gate: pb.GateEvaluated | None = None

    def watched() -> Iterator[opb.OptimizationEvent]:
        nonlocal gate
        for event in demo.opt.watch_job(job_id):
            kind = event.WhichOneof("kind")
            if kind == "accepted" and event.accepted.HasField("learning"):
                run = event.accepted.learning
                console.print(f"  JobAccepted {job_id}: run {run.run_id} of {run.deployment}")
            elif kind == "gate":
                gate = event.gate
            yield event

    with flowing(demo):
        render_job_events(watched(), as_json=False)
    return gate


def retrain(demo: Demo) -> bool:
    """Traffic until the loop triggers, its job and gate, its canary until promoted."""
    console.print(
        Rule(
            f"4. on the detection the loop retrains {demo.serving} on the labelled feedback, gates, canaries"
        )
    )
    deadline = time.monotonic() + TRIGGER_TIMEOUT
    sent = Sent()
    demo.seen = min(demo.seen, demo.enabled_position)  # the loop's events, even those the drift scene read
    while demo.triggered is None:
        if time.monotonic() > deadline:
            console.print(f"[red]no LearningTriggered within {TRIGGER_TIMEOUT:g} s[/red]")
            return False
        sent.add(demo.send(BATCH, NEW_SHARE))
        for event in demo.new_events():
            _show(demo, event)
    triggered = demo.triggered
    console.print(f"  traffic since the detection, labelled by the users: {sent.line()}")
    job_id = _job_of(demo, triggered.run_id, time.monotonic() + 60)
    if not job_id:
        console.print(f"[red]the loop started no job for {triggered.run_id}[/red]")
        return False
    gate = _watch(demo, job_id)
    if gate is None:
        console.print(f"[red]job {job_id} evaluated no gate[/red]")
        return False
    demo.gate = gate
    console.print(
        f"gate: {'PASSED' if gate.passed else 'FAILED'} - the candidate scores {gate.final_score:.3f} on the "
        f"held-out feedback, {gate.must_beat} {gate.must_beat_score:.3f}: {gate.reason}"
    )
    ended = follow(demo, lambda event: _show(demo, event))
    run_ended = demo.run_ended
    if run_ended is None or run_ended.result != "canary_started" or ended is None or not ended.promoted:
        console.print("[red]the retrained candidate was not canaried and promoted[/red]")
        return False
    demo.candidate = demo.serving = run_ended.candidate_version
    console.print(f"{DEPLOYMENT} now serves {demo.serving}: {demo.traffic.line()}")
    return True


def lineage(demo: Demo) -> bool:
    """`learn status`, then `predictions explain` of a prediction the retrained version served."""
    console.print(Rule(f"5. the loop as it stands, and where {demo.serving} comes from"))
    demo.wait_applied()
    code, _ = dspyops(demo.cli_flags, "learn", "status", DEPLOYMENT)
    if code != 0:
        return False
    ticket = demo.stream.new_kind()
    answer = demo.gw.predict(DEPLOYMENT, {"text": ticket["text"]}, routing_key="user-lineage")
    if answer.version != demo.serving:
        console.print(f"[red]{answer.version} served, not {demo.serving}[/red]")
        return False
    code, out = dspyops(demo.cli_flags, "predictions", "explain", answer.prediction_id)
    return code == 0 and "retrained by" in out
