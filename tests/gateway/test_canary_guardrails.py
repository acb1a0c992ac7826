"""Canaries with several guardrails and a schedule, through the real servers (an optimizer and
two gateways on one SQLite log, canary loops off so each check is the test's): a slow
candidate fails its latency guardrail and is rolled back, the event naming latency_p95; an
erroring one is rolled back on its error rate; a candidate within every guardrail ramps
10 -> 25 -> 50 -> 75 -> 100% as the gateways' clock (moved by the test, never waited for)
passes each monitoring period; two gateways checking at once append one decision per step;
`dspyops canary start|check` with the guardrail flags.

The versions are written into the log directly (as the optimizer registers them): a
baseline with no demos (the offline LM answers it badly), candidates with 16 demos (better),
one of them with an injected LM latency, one whose LM connection answers every call with an
error (a loopback fake provider)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.artifacts import encode_artifact
from dspyops.cli.main import main
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.render.events import describe_event
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.connections import connections_file
from tests.support.fake_provider import FakeProvider
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
SIGNATURE = "text -> label"
SLOW_MS = 300  # the slow candidate's LM answers after this long: its p95 is above it, always
COST = 0.25  # USD the priced candidate's provider reports per call
DEPLOYMENTS = ("slow", "errors", "ramp", "race", "cli", "auto", "costly")
HOUR = 3600


class Clock:
    """The gateways' wall clock, moved forward by the tests instead of waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Stack:
    opt: OptimizerClient
    gateways: list[GatewayClient]
    addresses: list[str]
    clock: Clock
    config: GatewayConfig  # the gateways' (loops off)


def write_versions(path: Path | str) -> None:
    """tickets 1.0.0 (no demos: the baseline), 1.1.0 (16 demos), 1.2.0 (16 demos, slow LM),
    1.3.0 (16 demos, an LM connection that fails every call), 1.4.0 (16 demos, a provider that
    prices each call at COST); each deployment serving 1.0.0."""
    spec = ProgramSpec(module="Predict", signature=SIGNATURE)
    versions = [
        ("1.0.0", 0, LMConfig()),
        ("1.1.0", 16, LMConfig()),
        ("1.2.0", 16, LMConfig(latency_ms=SLOW_MS)),
        ("1.3.0", 16, LMConfig(connection="fake", model="m1", max_tokens=64)),
        ("1.4.0", 16, LMConfig(connection="priced", model="m1", max_tokens=64)),
    ]
    store = open_store(str(path))
    try:
        registered = []
        for version, demos, lm in versions:
            module = build_module(spec)
            module.demos = [dspy.Example(**row).with_inputs("text") for row in ROWS[:demos]]
            digest, artifact = encode_artifact(spec, program_state(module), lm)
            registered.append(
                new_event(
                    pb.VersionRegistered(
                        program="tickets",
                        version=version,
                        spec=pb.ProgramSpec(module="Predict", signature=SIGNATURE),
                        lm=pb.LMConfig(connection=lm.connection, model=lm.model, max_tokens=lm.max_tokens),
                        artifact_digest=digest,
                        artifact=artifact,
                        status=pb.DEVELOPMENT,
                        lineage=pb.Lineage(optimizer="test-fixture"),
                    )
                )
            )
        store.append("program-tickets", registered, 0)
        for name in DEPLOYMENTS:
            routes = pb.RoutesSet(deployment=name, routes=[pb.Route(version="1.0.0", weight=1.0)])
            created = pb.DeploymentCreated(deployment=name, program="tickets")
            store.append(f"deployment-{name}", [new_event(created), new_event(routes)], 0)
    finally:
        store.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("canary-guardrails")
    log = tmp / "log.db"
    write_versions(log)
    provider = FakeProvider(mode="echo_error").start()
    priced = FakeProvider(cost=COST).start()
    extra = f"""
[connections.priced]
api_base = "{priced.api_base}"
models = ["m1"]
default_max_tokens = 64
max_tokens_cap = 256
"""
    connections = str(connections_file(tmp, provider, extra))
    clock = Clock()
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=str(log), data_dir=tmp / "data")))
    config = GatewayConfig(log=str(log), canary_interval=0, lm_connections=connections, clock=clock)
    gateways = [ServerThread(lambda: start_gateway(config)) for _ in range(2)]
    opt = OptimizerClient(optimizer.address)
    clients = [GatewayClient(s.address) for s in gateways]
    head = opt.read_log(0, 1).head
    for client in clients:
        assert wait_until(lambda c=client: c.list_deployment_states().log_position >= head)  # type: ignore[misc]
    yield Stack(opt, clients, [optimizer.address, *(s.address for s in gateways)], clock, config)
    for client in clients:
        client.close()
    opt.close()
    for server in reversed(gateways):
        server.stop()
    optimizer.stop()
    provider.stop()
    priced.stop()


def traffic(gw: GatewayClient, deployment: str, users: range) -> dict[str, int]:
    """A prediction per user, with its outcome (1: the label is right) when it answered;
    the predictions each version served (failed ones included)."""
    served: dict[str, int] = {}
    for i in users:
        row = ROWS[i % len(ROWS)]
        try:
            answer = gw.predict(deployment, {"text": row["text"]}, routing_key=f"{deployment}-{i}")
        except grpc.RpcError as err:  # a failed prediction is recorded; the candidate's, here
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
            served["failed"] = served.get("failed", 0) + 1
            continue
        served[answer.version] = served.get(answer.version, 0) + 1
        gw.record_outcome(answer.prediction_id, float(answer.outputs["label"].lower() == row["label"]))
    return served


def until_served(
    gw: GatewayClient, deployment: str, candidate: str, count: int, start: int, baseline: str = "1.0.0"
) -> int:
    """Traffic until the candidate and the baseline each served `count` predictions (the
    split is by hash, so how many users that takes is not fixed); the next user number."""
    served: dict[str, int] = {}
    user = start
    while min(served.get(candidate, 0), served.get(baseline, 0)) < count:
        assert user < start + 2000, f"an arm gets no traffic: {served}"
        for version, n in traffic(gw, deployment, range(user, user + 10)).items():
            served[version] = served.get(version, 0) + n
        user += 10
    return user


def deployment_events(stack: Stack, deployment: str) -> list[pb.Event]:
    return list(stack.opt.read_log(0, 1000, f"deployment-{deployment}").events)


def gw_at(gw: GatewayClient, position: int) -> bool:
    """The gateway has folded the log up to `position`."""
    return gw.list_deployment_states().log_position >= position


def guardrail(check: pb.GuardrailCheck, name: str) -> pb.GuardrailResult:
    return next(g for g in check.guardrails if g.guardrail == name)


def test_a_slow_candidate_fails_its_latency_guardrail_and_is_rolled_back(stack: Stack) -> None:
    gw = stack.gateways[0]
    state = gw.start_canary(
        "slow", "1.2.0", steps=[50, 100], min_samples_per_step=10, max_latency_p95_ms=SLOW_MS - 50
    )
    assert state.canary.max_latency_p95_ms == SLOW_MS - 50 and state.canary.step_started_us > 0
    until_served(gw, "slow", "1.2.0", 12, 0)
    status = gw.evaluate_canary("slow")
    assert status.action == "rolled_back", status.reason
    latency = guardrail(status.check, "latency_p95")
    assert latency.judged and latency.failed and latency.value >= SLOW_MS and latency.n >= 10
    assert latency.threshold == SLOW_MS - 50 and latency.baseline_n >= 1
    assert latency.baseline_value < latency.value  # the baseline arm beside it, for context
    assert [(r.version, r.weight) for r in status.state.routes] == [("1.0.0", 1.0)]
    ended = deployment_events(stack, "slow")[-1].payload.canary_ended
    assert not ended.promoted and "guardrail failed (latency_p95)" in ended.reason
    assert [g.guardrail for g in ended.check.guardrails] == ["outcome", "latency_p95"]
    assert [g.guardrail for g in ended.check.guardrails if g.failed] == ["latency_p95"]
    assert ended.check.checked_at_us >= ended.check.step_started_us > 0


def test_an_erroring_candidate_is_rolled_back_on_its_error_rate(stack: Stack) -> None:
    gw = stack.gateways[1]
    gw.start_canary("errors", "1.3.0", steps=[50, 100], min_samples_per_step=10, max_error_rate=0.1)
    served: dict[str, int] = {}
    user = 0
    while served.get("failed", 0) < 12:
        assert user < 1000
        for key, count in traffic(gw, "errors", range(user, user + 10)).items():
            served[key] = served.get(key, 0) + count
        user += 10
    status = gw.evaluate_canary("errors")
    assert status.action == "rolled_back", status.reason
    errors = guardrail(status.check, "error_rate")
    assert errors.failed and errors.value == 1.0 and errors.n >= 12 and errors.baseline_value == 0.0
    # the candidate never answered: its outcome test could not be judged, and held nothing up
    assert not guardrail(status.check, "outcome").judged
    ended = deployment_events(stack, "errors")[-1].payload.canary_ended
    assert not ended.promoted and "guardrail failed (error_rate)" in ended.reason


def test_a_costly_candidate_is_rolled_back_on_its_cost_per_prediction(stack: Stack) -> None:
    """The cost is read from the traces the deployment's capture policy keeps: the priced
    provider's reported cost reaches the candidate's; the free offline baseline costs 0."""
    gw = stack.gateways[1]
    stack.opt.set_capture_policy("costly", traces=True)
    head = stack.opt.read_log(0, 1).head  # (a policy moves no route: Deployment.log_position stays)
    assert wait_until(lambda: gw.get_deployment_state("costly").capture.traces and gw_at(gw, head))
    gw.start_canary("costly", "1.4.0", steps=[50, 100], min_samples_per_step=10, max_cost_per_prediction=0.1)
    until_served(gw, "costly", "1.4.0", 12, 0)
    status = gw.evaluate_canary("costly")
    assert status.action == "rolled_back", status.reason
    cost = guardrail(status.check, "cost_per_prediction")
    assert cost.failed and cost.value == pytest.approx(COST) and cost.n >= 12
    assert cost.baseline_value == 0.0 and cost.baseline_n >= 12
    ended = deployment_events(stack, "costly")[-1].payload.canary_ended
    assert not ended.promoted and "guardrail failed (cost_per_prediction)" in ended.reason


def test_a_candidate_within_every_guardrail_ramps_on_its_schedule_and_is_promoted(stack: Stack) -> None:
    gw = stack.gateways[0]
    schedule = [10.0, 25.0, 50.0, 75.0, 100.0]
    state = gw.start_canary(
        "ramp",
        "1.1.0",
        steps=schedule,
        min_samples_per_step=5,
        max_error_rate=0.05,
        max_latency_p95_ms=10_000,
        step_seconds=HOUR,
    )
    assert state.canary.step_seconds == HOUR
    user = 0
    for step, percent in enumerate(schedule[:-1]):
        user = until_served(gw, "ramp", "1.1.0", 6, user)
        early = gw.evaluate_canary("ramp")  # every guardrail holds, but the hour is not over
        assert early.action == "wait" and "seconds of its monitoring period" in early.reason, early.reason
        assert early.state.canary.step == step and early.state.canary.steps[step] == percent
        assert all(g.judged and not g.failed for g in early.check.guardrails), early.reason
        stack.clock.offset += HOUR
        moved = gw.evaluate_canary("ramp")
        expected = "promoted" if step == len(schedule) - 2 else "advanced"
        assert moved.action == expected, moved.reason
        assert [g.guardrail for g in moved.check.guardrails] == ["outcome", "error_rate", "latency_p95"]
        assert all(g.judged and not g.failed for g in moved.check.guardrails)
    assert [(r.version, r.weight) for r in gw.get_deployment_state("ramp").routes] == [("1.1.0", 1.0)]
    events = deployment_events(stack, "ramp")
    advanced = [e.payload.canary_advanced for e in events if e.type.endswith("CanaryAdvanced")]
    assert [a.percent for a in advanced] == [25.0, 50.0, 75.0]
    # each step's start is the deciding gateway's clock, an hour (moved) after the one before
    starts = [events[2].payload.canary_started.canary.step_started_us, *(a.started_us for a in advanced)]
    assert all(b - a >= HOUR * 1_000_000 for a, b in itertools.pairwise(starts))
    assert events[-1].payload.canary_ended.promoted


def test_the_canary_loop_rolls_a_slow_candidate_back_by_itself(stack: Stack) -> None:
    looping = ServerThread(lambda: start_gateway(replace(stack.config, canary_interval=0.1)))
    try:
        with GatewayClient(looping.address) as gw:
            head = stack.opt.read_log(0, 1).head
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            gw.start_canary(
                "auto", "1.2.0", steps=[50, 100], min_samples_per_step=10, max_latency_p95_ms=SLOW_MS - 50
            )
            served = 0
            for user in range(0, 2000, 10):  # traffic until the loop ends the canary
                if not gw.get_deployment_state("auto").HasField("canary"):
                    break
                served += traffic(gw, "auto", range(user, user + 10)).get("1.2.0", 0)
            assert served >= 10 and not gw.get_deployment_state("auto").HasField("canary")
            assert [r.version for r in gw.get_deployment_state("auto").routes] == ["1.0.0"]
    finally:
        looping.stop()
    ended = deployment_events(stack, "auto")[-1]
    assert ended.type.endswith("CanaryEnded") and not ended.payload.canary_ended.promoted
    assert "guardrail failed (latency_p95)" in ended.payload.canary_ended.reason
    assert ended.actor == "system"  # the service's own decision


# what the gateway that did not decide answers: it decided on a state the winner had moved
# on (its append ABORTED: wait), or it had already folded the winner's decision (the next
# step's period has just begun: wait; the canary has ended: none)
LOSER = {"wait", "none"}


def race(a: GatewayClient, b: GatewayClient, deployment: str) -> list[str]:
    """Both gateways check the canary at once; the actions they answer."""
    barrier = threading.Barrier(2)
    actions: list[str] = []

    def check(gw: GatewayClient) -> None:
        barrier.wait()
        actions.append(gw.evaluate_canary(deployment).action)

    threads = [threading.Thread(target=check, args=(gw,)) for gw in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return actions


def test_two_gateways_checking_at_once_append_one_decision_per_step(stack: Stack) -> None:
    a, b = stack.gateways
    a.start_canary("race", "1.1.0", steps=[25, 50, 100], min_samples_per_step=5, step_seconds=HOUR)
    user = 0
    for expected in ("advanced", "promoted"):
        user = until_served(a, "race", "1.1.0", 6, user)
        stack.clock.offset += HOUR
        position = a.get_deployment_state("race").log_position
        assert wait_until(lambda p=position: b.get_deployment_state("race").log_position >= p)  # type: ignore[misc]
        actions = race(a, b, "race")
        assert actions.count(expected) == 1 and set(actions) - {expected} <= LOSER, actions
    decisions = [e.type.rsplit(".", 1)[-1] for e in deployment_events(stack, "race")]
    assert decisions.count("CanaryAdvanced") == 1 and decisions.count("CanaryEnded") == 1


def test_canary_cli_with_guardrails_and_a_schedule(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    addresses = ["--optimizer", stack.addresses[0], "--gateway", stack.addresses[1]]

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main([*addresses, *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    # the cost is read from kept traces, and the deployment keeps none yet
    code, out = run("canary", "start", "cli", "--candidate", "1.1.0", "--max-cost", "0.01")
    assert code != 0 and "FAILED_PRECONDITION" in out and "max_cost_per_prediction" in out, out
    stack.opt.set_capture_policy("cli", traces=True)
    head = stack.opt.read_log(0, 1).head
    assert wait_until(lambda: gw_at(stack.gateways[1], head))
    code, out = run(
        "canary",
        "start",
        "cli",
        "--candidate",
        "1.1.0",
        "--schedule",
        "10,25,50,75,100",
        "--step-minutes",
        "60",
        "--max-error-rate",
        "0.05",
        "--max-latency-p95",
        "10000",
        "--max-cost",
        "0.01",
        "--min-samples",
        "5",
    )
    assert code == 0, out
    assert "steps 10, 25, 50, 75, 100, 60 minutes per step" in out
    assert "step 0 (10%), 60 minutes per step; guardrails: error rate <= 0.05" in out  # the state
    assert "error rate <= 0.05" in out and "latency p95 ms <= 10000" in out and "USD <= 0.01" in out
    until_served(stack.gateways[1], "cli", "1.1.0", 6, 0)
    code, out = run("canary", "check", "cli")
    assert code == 0 and "wait" in out and "monitoring period" in out, out
    for name in ("outcome", "error_rate", "latency_p95", "cost_per_prediction"):
        assert name in out, out
    stack.clock.offset += HOUR
    code, out = run("canary", "check", "cli")
    assert code == 0 and "advanced" in out, out
    code, out = run("log", "read", "--stream", "deployment-cli")
    assert code == 0 and "advanced to 25%" in out
    started = next(e for e in deployment_events(stack, "cli") if e.type.endswith("CanaryStarted"))
    assert "steps 10%, 25%, 50%, 75%, 100%, 60 minutes per step; guardrails: error rate" in describe_event(
        started
    )


def test_on_a_postgresql_log_two_gateways_sharing_its_records_roll_back_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """The records are the database's, shared by both gateways: each one's traffic counts in
    the other's check, and of two checks at once exactly one appends the rollback."""
    write_versions(postgres_url)
    config = GatewayConfig(log=postgres_url, canary_interval=0)
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=postgres_url, data_dir=tmp_path / "data"))
    )
    gateways: list[ServerThread] = []
    clients: list[GatewayClient] = []
    try:
        gateways = [ServerThread(lambda: start_gateway(config)) for _ in range(2)]
        clients = [GatewayClient(s.address) for s in gateways]
        a, b = clients
        a.start_canary(
            "slow", "1.2.0", steps=[50, 100], min_samples_per_step=10, max_latency_p95_ms=SLOW_MS - 50
        )
        with OptimizerClient(optimizer.address) as opt:
            head = opt.read_log(0, 1).head
            assert wait_until(lambda: b.get_deployment_state("slow").log_position >= head)
            until_served(a, "slow", "1.2.0", 6, 0)
            until_served(b, "slow", "1.2.0", 6, 1000)
            actions = race(a, b, "slow")
            assert actions.count("rolled_back") == 1 and set(actions) - {"rolled_back"} <= LOSER, actions
            events = opt.read_log(0, 1000, "deployment-slow").events
        ended = [e.payload.canary_ended for e in events if e.type.endswith("CanaryEnded")]
        assert len(ended) == 1 and "guardrail failed (latency_p95)" in ended[0].reason
        assert guardrail(ended[0].check, "latency_p95").n >= 12  # both gateways' predictions
    finally:
        for client in clients:
            client.close()
        for server in reversed(gateways):
            server.stop()
        optimizer.stop()
