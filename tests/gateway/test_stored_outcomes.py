"""Stored outcomes outside the metric's range never break experiments or canaries.

An older server took any finite outcome (`outcome 5` for a binary metric, -1e9 for a
canary), and outcomes are write-once: from then on GetExperimentResults and
ConcludeExperiment were INTERNAL ("math domain error") and the canary loop failed every
tick, so a worse candidate was never rolled back. Here such values are written straight
into the gateway's prediction records file, as that older server would have stored them,
and the real servers must leave them out, count them, and go on deciding. A canary check
that cannot run at all (its records unreadable) must say why in the deployment's state,
answer EvaluateCanary with that status, and be logged once, not every tick.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dspyops.client import GatewayClient, OptimizerClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:60], ROWS[60:]
WEAK, STRONG = "1.0.0", "1.1.0"  # no demos (answers badly) / 16 labeled demos (answers well)


@dataclass
class Stack:
    opt: OptimizerClient
    gw: GatewayClient  # canary loop off: decisions only through EvaluateCanary
    log: str
    records: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stored-outcomes")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    opt = OptimizerClient(optimizer.address)
    for name, params in (
        ("BootstrapFewShot", {"max_bootstrapped_demos": 0, "max_labeled_demos": 0}),
        ("LabeledFewShot", {"k": 16}),
    ):
        events = list(
            opt.start_optimization(
                "tickets", "text -> label", trainset=TRAIN, valset=VAL, optimizer=name, params=params
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
    for deployment, version in (("ab", WEAK), ("scores", WEAK), ("guard", STRONG), ("guard-loop", STRONG)):
        opt.create_deployment(deployment, "tickets")
        opt.set_routes(deployment, {version: 1.0})
    records = tmp / "records.db"
    gateway = ServerThread(
        lambda: start_gateway(GatewayConfig(log=log, predictions=str(records), canary_interval=0))
    )
    gw = GatewayClient(gateway.address)
    head = opt.read_log(0, 1).head
    assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
    try:
        yield Stack(opt, gw, log, records)
    finally:
        gw.close()
        opt.close()
        gateway.stop()
        optimizer.stop()


def predictions(gw: GatewayClient, deployment: str, n: int) -> list[tuple[str, str, bool]]:
    """n predictions: (prediction id, version that served it, was it right)."""
    result = []
    for i in range(n):
        row = VAL[i % len(VAL)]
        response = gw.predict(deployment, {"text": row["text"]}, routing_key=f"{deployment}-{i}")
        result.append(
            (response.prediction_id, response.version, response.outputs["label"].lower() == row["label"])
        )
    return result


def store_outcomes_directly(records: Path, outcomes: list[tuple[str, object]]) -> None:
    """What an older server (or anything writing the records file) left behind."""
    conn = sqlite3.connect(records, timeout=30)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO outcomes (prediction_id, value, recorded_at_us) VALUES (?, ?, ?)",
                [(pid, value, time.time_ns() // 1000) for pid, value in outcomes],
            )
    finally:
        conn.close()


def split_by_version(made: list[tuple[str, str, bool]], keep_out: int) -> tuple[dict, dict]:
    """Per version: the first `keep_out` predictions (left for stored values), and the rest."""
    left: dict[str, list[tuple[str, bool]]] = {}
    rest: dict[str, list[tuple[str, bool]]] = {}
    for pid, version, right in made:
        target = left if len(left.setdefault(version, [])) < keep_out else rest
        target.setdefault(version, []).append((pid, right))
    return left, rest


def test_binary_results_leave_out_and_count_stored_values_that_are_not_0_or_1(stack: Stack) -> None:
    gw = stack.gw
    # fixed seeds: a random one splits 60 users unevenly enough for an SRM alarm now and then
    gw.start_experiment("ab", WEAK, [STRONG], metric="binary", min_samples_per_arm=10, seed="stored-binary")
    left, rest = split_by_version(predictions(gw, "ab", 60), keep_out=2)
    assert set(left) == {WEAK, STRONG} and all(len(v) == 2 for v in left.values())
    for arm in rest.values():
        for pid, right in arm:
            gw.record_outcome(pid, float(right))
    bad = [5.0, -1.0, 1e6, 0.5]
    store_outcomes_directly(
        stack.records, [(pid, bad[i]) for i, (pid, _) in enumerate(left[WEAK] + left[STRONG])]
    )

    results = gw.get_experiment_results("ab")  # INTERNAL ("math domain error") before the fix
    arms = {a.version: a for a in results.arms}
    for version in (WEAK, STRONG):
        assert arms[version].excluded == 2
        assert arms[version].n == len(rest[version])
        assert arms[version].mean == pytest.approx(sum(r for _, r in rest[version]) / len(rest[version]))
        assert 0.0 <= arms[version].ci_low <= arms[version].mean <= arms[version].ci_high <= 1.0
    assert results.decision in ("keep_running", "treatment_better")
    assert "4 stored outcomes outside the binary range" in results.reason

    concluded = gw.conclude_experiment("ab", promote_winner=False)  # INTERNAL before the fix
    assert [(r.version, r.weight) for r in concluded.routes] == [(WEAK, 1.0)]
    event = stack.opt.read_log(0, 1000, "deployment-ab").events[-1].payload.experiment_concluded
    assert "stored outcomes outside the binary range" in event.reason


def test_continuous_results_leave_out_values_that_are_not_finite_or_beyond_the_limit(stack: Stack) -> None:
    gw = stack.gw
    gw.start_experiment(
        "scores", WEAK, [STRONG], metric="continuous", min_samples_per_arm=5, seed="stored-continuous"
    )
    left, rest = split_by_version(predictions(gw, "scores", 40), keep_out=3)
    for arm in rest.values():
        for i, (pid, right) in enumerate(arm):
            gw.record_outcome(pid, (10.0 if right else 2.0) + i % 3)
    # 1e300 is finite (an older server took it) but its square is not: it would make every sum inf.
    stored: list[object] = [1e300, -math.inf, math.nan, 1e300, "not a number", -1e101]
    store_outcomes_directly(
        stack.records, [(pid, stored[i]) for i, (pid, _) in enumerate(left[WEAK] + left[STRONG])]
    )
    results = gw.get_experiment_results("scores")
    arms = {a.version: a for a in results.arms}
    for version in (WEAK, STRONG):
        assert arms[version].excluded == 3 and arms[version].n == len(rest[version])
        assert math.isfinite(arms[version].mean) and 2.0 <= arms[version].mean <= 13.0
        assert math.isfinite(arms[version].ci_low) and math.isfinite(arms[version].ci_high)
    treatment = arms[STRONG]
    assert 0.0 <= treatment.p_value <= 1.0 and 0.0 <= treatment.sequential_p_value <= 1.0
    assert math.isfinite(treatment.lift)
    assert "6 stored outcomes outside the continuous range" in results.reason
    gw.stop_experiment("scores")


def canary_traffic(stack: Stack, deployment: str, n: int) -> None:
    """A worse candidate (WEAK) against a good baseline; one candidate outcome stored as -1e9."""
    stack.gw.start_canary(deployment, WEAK, steps=[50, 100], min_samples_per_step=15)
    left, rest = split_by_version(predictions(stack.gw, deployment, n), keep_out=1)
    for arm in rest.values():
        for pid, right in arm:
            stack.gw.record_outcome(pid, float(right))
    store_outcomes_directly(stack.records, [(left[WEAK][0][0], -1e9)])


def test_a_worse_canary_is_rolled_back_despite_a_stored_outcome_of_minus_1e9(stack: Stack) -> None:
    canary_traffic(stack, "guard", 90)
    status = stack.gw.evaluate_canary("guard")  # INTERNAL before the fix
    assert status.action == "rolled_back", status.reason
    assert status.check.worse and status.check.excluded == 1
    assert "1 stored outcomes outside the binary range left out" in status.reason
    assert [(r.version, r.weight) for r in status.state.routes] == [(STRONG, 1.0)]
    ended = stack.opt.read_log(0, 1000, "deployment-guard").events[-1].payload.canary_ended
    assert ended.check.excluded == 1 and not ended.promoted


def test_the_canary_loop_rolls_back_despite_a_stored_outcome_of_minus_1e9(stack: Stack) -> None:
    canary_traffic(stack, "guard-loop", 90)
    loop = ServerThread(
        lambda: start_gateway(
            GatewayConfig(log=stack.log, predictions=str(stack.records), canary_interval=0.05)
        )
    )
    try:
        with GatewayClient(loop.address) as auto:
            # before the fix every tick failed with canary_check_failed and the canary ran on
            assert wait_until(lambda: not auto.get_deployment_state("guard-loop").HasField("canary"), 30)
            assert [r.version for r in auto.get_deployment_state("guard-loop").routes] == [STRONG]
    finally:
        loop.stop()
    ended = stack.opt.read_log(0, 1000, "deployment-guard-loop").events[-1].payload.canary_ended
    assert not ended.promoted and ended.check.excluded == 1


def _failures_in_a_row(text: str) -> int:
    found = re.search(r"\((\d+) checks? in a row\)", text)
    return int(found.group(1)) if found else 0


def test_a_check_that_cannot_run_says_why_and_is_logged_once(stack: Stack, tmp_path: Path) -> None:
    records = tmp_path / "own-records.db"  # this gateway's own records: breaking them touches no other test
    stack.opt.create_deployment("fragile", "tickets")
    stack.opt.set_routes("fragile", {STRONG: 1.0})
    gateway = ServerThread(
        lambda: start_gateway(GatewayConfig(log=stack.log, predictions=str(records), canary_interval=0.05))
    )
    try:
        with GatewayClient(gateway.address) as gw, capture_logs() as logs:
            head = stack.opt.read_log(0, 1).head
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            gw.start_canary("fragile", WEAK)
            assert wait_until(lambda: "needed in each" in gw.get_deployment_state("fragile").canary_check)
            with sqlite3.connect(records) as conn:  # the records become unreadable
                conn.execute("ALTER TABLE outcomes RENAME TO outcomes_elsewhere")

            status = gw.evaluate_canary("fragile")  # INTERNAL before the fix
            assert status.action == "failed"
            assert "no such table: outcomes" in status.reason and "OperationalError" in status.reason
            assert status.canary.candidate == WEAK and status.state.canary.candidate == WEAK
            assert status.state.canary_check == status.reason
            # the loop keeps checking: the count grows, the log line does not repeat
            assert wait_until(
                lambda: _failures_in_a_row(gw.get_deployment_state("fragile").canary_check) >= 5
            )
            failed = [
                e for e in logs if e["event"] == "canary_check_failed" and e.get("deployment") == "fragile"
            ]
            assert len(failed) == 1 and "no such table: outcomes" in failed[0]["error"]
            assert gw.get_deployment_state("fragile").canary.step == 0  # nothing was decided

            with sqlite3.connect(records) as conn:
                conn.execute("ALTER TABLE outcomes_elsewhere RENAME TO outcomes")
            assert wait_until(lambda: "needed in each" in gw.get_deployment_state("fragile").canary_check)
            assert gw.evaluate_canary("fragile").action == "wait"
    finally:
        gateway.stop()
