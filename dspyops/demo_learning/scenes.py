"""The demo's first two scenes (the third, the learning loop's retrain, is in learn.py):

- steady: the ticket router optimized, deployed with capture on and a drift monitor; traffic
  whose labels the users report; the monitor stays quiet;
- drift: new kinds of tickets arrive; the monitor appends DriftDetected.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rich.rule import Rule

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.datasets import example_row, load_dataset, split
from dspyops.demo_learning.traffic import Sent, TicketStream
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console
from dspyops.render.jobs import render_job_events

PROGRAM = "ticket-triage"
DEPLOYMENT = "helpdesk"
SIGNATURE = "text -> label"
# The offline model answers a ticket with the label of its most similar demo, so every
# labelled example as a demo (LabeledFewShot, up to its limit of 256) is the
# program that learns most from what it was shown: the demo's optimizer, before and after
# (the learning policy's retrain runs it too).
OPTIMIZER, PARAMS = "LabeledFewShot", {"k": 256}
VAL_FRACTION, SPLIT_SEED = 0.3, 15
STEADY_TICKETS, BATCH = 200, 25
MAX_DRIFT_TICKETS = 2000
MIN_OUTCOMES, ALPHA, MAX_ERROR_RATE = 50, 0.05, 0.05  # the drift monitor
NEW_SHARE = 0.6  # of the tickets after the drift, of kinds the serving version never saw


@dataclass
class Demo:
    """What the scenes share: the clients, the ticket stream, and what happened so far."""

    opt: OptimizerClient
    gateways: list[GatewayClient]  # the traffic alternates between them
    stream: TicketStream
    traffic: Sent = field(default_factory=Sent)
    serving: str = ""
    candidate: str = ""
    detection: pb.DriftDetected | None = None
    enabled_position: int = 0  # the log's head once the learning policy was set
    gate: pb.GateEvaluated | None = None
    triggered: pb.LearningTriggered | None = None  # the learning loop's retrain
    run_ended: pb.LearningRunEnded | None = None
    cli_flags: list[str] = field(default_factory=list)  # --optimizer/--gateway for `dspyops`
    seen: int = 0  # the last log position read by `new_events`

    def send(self, n: int, new_share: float) -> Sent:
        sent = self.stream.send(self.gateways, DEPLOYMENT, n, new_share)
        self.traffic.add(sent)
        return sent

    def new_events(self) -> Iterator[pb.Event]:
        """The deployment stream's events appended since the last call."""
        while True:
            page = self.opt.read_log(self.seen, 500, deployment_stream(DEPLOYMENT))
            for event in page.events:
                self.seen = event.position  # before the yield: a caller may stop at any event
                yield event
            self.seen = max(self.seen, page.scanned_to)
            if not page.events or self.seen >= page.head:
                return

    @property
    def gw(self) -> GatewayClient:
        """The gateway the demo's commands go to (any would do: they share the log)."""
        return self.gateways[0]

    def wait_applied(self, timeout: float = 10.0) -> None:
        """Until every gateway has folded the whole log as it is now."""
        head = self.opt.read_log(0, 1).head
        deadline = time.monotonic() + timeout
        for gateway in self.gateways:
            while gateway.list_deployment_states().log_position < head:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"a gateway did not reach log position {head} within {timeout} s")
                time.sleep(0.01)


def optimize(
    demo: Demo, trainset: list[dict[str, str]], valset: list[dict[str, str]], must_beat: str = ""
) -> pb.JobCompleted | None:
    events = demo.opt.start_optimization(
        PROGRAM,
        SIGNATURE,
        optimizer=OPTIMIZER,
        params=PARAMS,
        metric="exact_match",
        trainset=trainset,
        valset=valset,
        val_fraction=0.0 if valset else VAL_FRACTION,
        split_seed=SPLIT_SEED,
        must_beat=must_beat,
    )
    gate: pb.GateEvaluated | None = None

    def watched() -> Iterator[opb.OptimizationEvent]:
        nonlocal gate
        for event in events:
            if event.WhichOneof("kind") == "gate":
                gate = event.gate
            yield event

    last = render_job_events(watched(), as_json=False)
    demo.gate = gate
    if last is None or last.WhichOneof("kind") != "completed":
        console.print(f"[red]the job did not complete: {last}[/red]")
        return None
    return last.completed


def steady(demo: Demo) -> bool:
    """Optimize, deploy with capture and a drift monitor, serve known tickets: no detection."""
    rows = [example_row(example) for example in load_dataset("support_tickets")]
    console.print(Rule(f"1. steady: {OPTIMIZER} on {len(rows)} support tickets, deployed, monitored"))
    done = optimize(demo, rows, [])
    if done is None:
        return False
    demo.serving = done.version
    # the drift monitor's reference: the version's offline evaluation on the held-out tickets
    held_out = [example_row(e) for e in split(load_dataset("support_tickets"), VAL_FRACTION, SPLIT_SEED)[1]]
    report = list(demo.opt.evaluate(PROGRAM, done.version, dataset=held_out, metric="exact_match"))[-1].report
    console.print(
        f"offline evaluation of {done.version}: {report.score:.3f} on {report.examples} held-out tickets"
    )
    demo.opt.create_deployment(DEPLOYMENT, PROGRAM)
    demo.opt.set_routes(DEPLOYMENT, {done.version: 1.0}, reason="the first version of the ticket triage")
    demo.opt.set_capture_policy(
        DEPLOYMENT, inputs_outputs=True, retention_days=30, reason="keep inputs: labelled outcomes train"
    )
    demo.gw.set_drift_monitor(
        DEPLOYMENT,
        min_outcomes=MIN_OUTCOMES,
        alpha=ALPHA,
        max_error_rate=MAX_ERROR_RATE,
        reason="watch the triage's outcome rate",
    )
    demo.wait_applied()
    console.print(
        f"{DEPLOYMENT} serves {PROGRAM} {done.version} (offline score {report.score:.3f}); capture of "
        f"inputs on; drift monitor: outcome rate against the offline score, alpha {ALPHA}, "
        f"at least {MIN_OUTCOMES} outcomes; error rate <= {MAX_ERROR_RATE}"
    )
    for _ in range(STEADY_TICKETS // BATCH):
        demo.send(BATCH, 0.0)
    console.print(f"{STEADY_TICKETS} known tickets, the users' labels recorded: {demo.traffic.line()}")
    drift = demo.gw.get_drift_status(DEPLOYMENT)
    console.print(signals_line("monitor", drift.signals))
    detections = [e for e in demo.new_events() if e.payload.WhichOneof("kind") == "drift_detected"]
    if detections or drift.detections:
        console.print("[red]the monitor detected a drift in steady traffic[/red]")
        return False
    console.print("the monitor is quiet: no DriftDetected")
    return True


def signals_line(what: str, signals: Iterable[pb.DriftSignal]) -> str:
    parts = []
    for s in signals:
        if s.signal == "outcome_rate":
            judged = f"p={s.p_value:.3g}" if not s.note else s.note
            parts.append(f"outcome rate {s.value:.3f} (n={s.n}) vs reference {s.reference:.3f}, {judged}")
        elif s.reference:
            parts.append(f"{s.signal} {s.value:.3g} (n={s.n}), limit {s.reference:g}")
    return f"{what}: " + "; ".join(parts)


def drift(demo: Demo) -> bool:
    """Tickets of new kinds arrive until the monitor appends DriftDetected."""
    console.print(Rule(f"3. drift: {NEW_SHARE:.0%} of the tickets are now of kinds {demo.serving} never saw"))
    sent = Sent()
    while demo.detection is None and sum(sent.labels.values()) < MAX_DRIFT_TICKETS:
        sent.add(demo.send(BATCH, NEW_SHARE))
        for event in demo.new_events():
            if event.payload.WhichOneof("kind") == "drift_detected":
                demo.detection = event.payload.drift_detected
        if sum(sent.labels.values()) % 100 == 0 and demo.detection is None:
            console.print(f"  {sum(sent.labels.values())} tickets: {sent.line()}")
    detected = demo.detection
    if detected is None:
        console.print(f"[red]no DriftDetected after {MAX_DRIFT_TICKETS} drifted tickets[/red]")
        return False
    s, w = detected.statistics, detected.window
    console.print(
        f"[bold]DriftDetected[/bold] after {sum(sent.labels.values())} drifted tickets ({sent.line()}): "
        f"{detected.signal} of {detected.version}: rate {s.value:.3f} vs reference {s.reference:.3f} "
        f"({detected.reference}), always-valid p={s.p_value:.3g}, n={s.n}; window: {w.n} predictions "
        f"from log position {w.from_position}"
    )
    return True
