"""Runs the learning demo's scenes against real services: an optimizer and two gateways (both
run the drift, canary and learning loops, the learning loop's retrains on the optimizer, so
every decision is taken once among several deciders), started through dspyops.launch with the
offline LM, a SQLite log, DSPY_CACHEDIR and every file in the work directory; then
`dspyops log verify` and a summary."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.rule import Rule
from rich.table import Table

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.demo_learning.learn import enable, lineage, retrain
from dspyops.demo_learning.provider import RefusingProvider
from dspyops.demo_learning.rollout import bad_candidate
from dspyops.demo_learning.scenes import DEPLOYMENT, Demo, drift, steady
from dspyops.demo_learning.shell import dspyops
from dspyops.demo_learning.traffic import TicketStream
from dspyops.launch import ServiceProcess
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console

SEED = 15
DRIFT_INTERVAL, CANARY_INTERVAL, LEARNING_INTERVAL = 0.5, 0.5, 0.5  # seconds between the gateways' checks


@contextlib.contextmanager
def services(workdir: Path, connections: Path) -> Iterator[tuple[ServiceProcess, list[ServiceProcess]]]:
    env = dict(os.environ)
    env.setdefault("DSPY_CACHEDIR", str(workdir / "dspy_cache"))
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("DSPYOPS_LOG_LEVEL", "warning")
    log = str(workdir / "dspyops.db")
    loops = ["--drift-interval", str(DRIFT_INTERVAL), "--canary-interval", str(CANARY_INTERVAL)]
    loops += ["--learning-interval", str(LEARNING_INTERVAL)]  # and, once the optimizer runs, its address
    lm = ["--lm-connections", str(connections)]
    started: list[ServiceProcess] = []
    try:
        optimizer = ServiceProcess(
            "optimizer",
            ["optimizer", "--log", log, "--data-dir", str(workdir / "data"), "--create", *lm],
            workdir,
            env,
        )
        started.append(optimizer)
        gateways = []
        for name in ("gateway-1", "gateway-2"):
            learning = ["--learning-optimizer", optimizer.address]  # no auth in the demo: no token
            gateways.append(
                ServiceProcess(name, ["gateway", "--log", log, *lm, *loops, *learning], workdir, env)
            )
            started.append(gateways[-1])
        yield optimizer, gateways
    finally:
        for service in reversed(started):
            service.stop()


def loop_line(event: pb.Event) -> str | None:
    """A short line for an event of the loop (None: not one)."""
    kind = event.payload.WhichOneof("kind")
    p: Any = getattr(event.payload, kind) if kind else None
    match kind:
        case "drift_detected":
            s = p.statistics
            stats = f"{s.value:.3f} < {s.reference:.3f}, p={s.p_value:.3g}, n={s.n}"
            return f"DriftDetected: {p.version} {p.signal} {stats}"
        case "gate_evaluated":
            verdict = "passed" if p.passed else "failed"
            if not p.must_beat:
                return f"GateEvaluated: {verdict}, {p.final_score:.3f} (no must_beat)"
            return f"GateEvaluated: {verdict}, {p.final_score:.3f} vs {p.must_beat} {p.must_beat_score:.3f}"
        case "job_completed":
            return f"JobCompleted: {p.program} {p.version}, score {p.final_score:.3f}"
        case "canary_started":
            return f"CanaryStarted: {p.canary.candidate} against {p.canary.baseline}"
        case "canary_advanced":
            return f"CanaryAdvanced: {p.percent:g}% (step {p.step})"
        case "canary_ended":
            failed = [g.guardrail for g in p.check.guardrails if g.failed]
            end = "promoted" if p.promoted else f"rolled back ({', '.join(failed)})"
            return f"CanaryEnded: {end}, routes " + ", ".join(f"{r.version} {r.weight:.0%}" for r in p.routes)
        case "learning_policy_set":
            on = "on drift" if p.policy.on_drift else f"every {p.policy.min_new_examples} labels"
            return f"LearningPolicySet: {'on' if p.enabled else 'off'}, {on}"
        case "learning_triggered":
            f = p.feedback
            return f"LearningTriggered: {p.run_id} ({p.trigger}), {f.train_n} train / {f.holdout_n} held out"
        case "job_accepted" if p.HasField("learning"):
            return f"JobAccepted: job {p.job_id} for {p.learning.run_id}"
        case "learning_run_ended":
            return f"LearningRunEnded: {p.run_id} {p.result} {p.candidate_version}"
    return None


def summary(demo: Demo, timings: list[tuple[str, float]]) -> None:
    console.print(Rule("summary"))
    events = [
        *demo.opt.read_log(0, 10000, deployment_stream(DEPLOYMENT)).events,
        *demo.opt.read_log(0, 10000, "job-").events,
    ]
    table = Table(title="the loop on the record")
    for column in ("position", "actor", "event"):
        table.add_column(column, overflow="fold")
    for event in sorted(events, key=lambda e: e.position):
        line = loop_line(event)
        if line is not None:
            table.add_row(str(event.position), event.actor or "-", line)
    console.print(table)
    t = demo.traffic
    labels = ", ".join(f"{label} {n}" for label, n in sorted(t.labels.items()))
    console.print(f"traffic: {sum(t.labels.values())} tickets ({labels}); {t.line()}")
    if demo.triggered is not None:
        f = demo.triggered.feedback
        console.print(
            f"retrain {demo.triggered.run_id}: job {demo.triggered.base_job_id}'s trainset + {f.train_n} "
            f"feedback examples, {f.holdout_n} held out; {DEPLOYMENT} serves {demo.serving}"
        )
    console.print("scenes: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))


def run_demo(workdir: Path | None = None) -> int:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dspyops-learning-")))
        workdir.mkdir(parents=True, exist_ok=True)
        provider = RefusingProvider()
        stack.callback(provider.stop)
        connections = provider.connections_file(workdir / "connections.toml")
        console.print(
            f"[bold]dspyops learning demo[/bold]: log {workdir / 'dspyops.db'}, offline LM, seed {SEED}"
        )
        optimizer, gateways = stack.enter_context(services(workdir, connections))
        console.print(
            f"optimizer on {optimizer.address}; gateways on {gateways[0].address} and {gateways[1].address} "
            f"(both check drift every {DRIFT_INTERVAL:g} s and canaries every {CANARY_INTERVAL:g} s)"
        )
        opt = stack.enter_context(OptimizerClient(optimizer.address))
        clients = [stack.enter_context(GatewayClient(g.address)) for g in gateways]
        demo = Demo(opt, clients, TicketStream(SEED))
        demo.cli_flags = ["--optimizer", optimizer.address, "--gateway", gateways[0].address]
        timings: list[tuple[str, float]] = []
        for name, scene in (
            ("steady", steady),
            ("learn enable", enable),
            ("drift", drift),
            ("retrain and canary", retrain),
            ("lineage", lineage),
        ):
            began = time.monotonic()
            if not scene(demo):
                return 1
            timings.append((name, time.monotonic() - began))
        began = time.monotonic()
        ended = bad_candidate(demo)
        if ended is None:
            console.print("[red]the bad candidate was not rolled back[/red]")
            return 1
        failed = [g.guardrail for g in ended.check.guardrails if g.failed]
        console.print(
            f"rolled back by the {', '.join(failed) or '?'} guardrail; {DEPLOYMENT} serves {demo.serving}"
        )
        if not failed:
            return 1
        timings.append(("bad candidate", time.monotonic() - began))
        console.print(Rule("7. the record"))
        if dspyops(demo.cli_flags, "log", "verify")[0] != 0:
            return 1
        summary(demo, timings)
    console.print(f"[bold green]learning demo finished in {time.monotonic() - started:.1f} s[/bold green]")
    return 0
