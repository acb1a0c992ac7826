"""Capture policies end to end, through the real servers: SetCapturePolicy on the optimizer
appends CapturePolicySet, GetDeployment and the gateway's DeploymentState show it, and the
gateway's prediction records (a real SQLite file, read here directly) keep a prediction's
trace and inputs only as the policy says: allowlisted fields only, scrubbed, deleted after
the retention. The gateway's clock is injected, so the retention sweep is tested by moving
time two days forward instead of waiting."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from dspyops.capture import DAY_US
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.tracing import trace_from_json
from gateway_svc.records import PredictionRecord
from gateway_svc.records.sqlite import SQLitePredictionStore
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:12]


class Clock:
    """The gateway's wall clock, moved forward by the tests."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass(frozen=True)
class Stack:
    opt: OptimizerClient
    gw: GatewayClient
    log: str
    predictions: str
    clock: Clock

    def record(self, prediction_id: str) -> dict[str, Any]:
        with sqlite3.connect(self.predictions) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT * FROM predictions WHERE prediction_id = ?", [prediction_id]
            ).fetchone()
        assert row is not None, prediction_id
        return dict(row)

    def policy(self, deployment: str, **policy: Any) -> None:
        """Set the policy and wait until the gateway serves with it."""
        changed = self.opt.set_capture_policy(deployment, reason="test", **policy)
        assert wait_until(lambda: self.gw.list_deployment_states().log_position >= changed.log_position)
        head = self.opt.read_log(0, 1).head
        assert wait_until(lambda: self.gw.list_deployment_states().log_position >= head)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("capture")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    clock = Clock()
    with OptimizerClient(optimizer.address) as opt:
        events = list(
            opt.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        assert events[-1].WhichOneof("kind") == "completed"
        for name in ("plain", "traced", "allow", "kept", "expiring"):
            opt.create_deployment(name, "tickets")
            deployment = opt.set_routes(name, {"1.0.0": 1.0})
        config = GatewayConfig(log=log, canary_interval=0, capture_purge_interval=0.05, clock=clock)
        gateway = ServerThread(lambda: start_gateway(config))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= deployment.log_position)
            yield Stack(opt, gw, log, f"{log}.predictions", clock)
        gateway.stop()
    optimizer.stop()


def test_without_a_policy_a_record_keeps_no_inputs_and_no_trace(stack: Stack) -> None:
    answer = stack.gw.predict("plain", {"text": "my name is Jane Roe, refund me"}, include_trace=True)
    assert len(answer.trace) == 1  # asked for: returned, yet not kept
    record = stack.record(answer.prediction_id)
    assert (record["inputs_json"], record["trace_json"], record["capture_expires_at_us"]) == ("", "", 0)
    assert not stack.opt.get_deployment("plain").HasField("capture")
    assert not stack.gw.get_deployment_state("plain").HasField("capture")


def test_set_capture_policy_is_an_event_and_both_services_show_it(stack: Stack) -> None:
    before = stack.opt.get_deployment("traced")
    stack.policy("traced", traces=True, inputs_outputs=True, retention_days=0)
    after = stack.opt.get_deployment("traced")
    assert after.stream_version == before.stream_version + 1
    assert after.log_position == before.log_position  # what serves it did not change
    assert (after.capture.traces, after.capture.inputs_outputs, after.capture.retention_days) == (
        True,
        True,
        0,
    )
    assert stack.gw.get_deployment_state("traced").capture == after.capture
    with open_store(stack.log, create=False) as store:
        last = store.read(store.head() - 1, 1)[0]
    assert last.type.endswith("CapturePolicySet") and last.stream == "deployment-traced"


def test_a_policy_keeps_the_trace_and_inputs_without_include_trace(stack: Stack) -> None:
    stack.policy("traced", traces=True, inputs_outputs=True)
    text = "I was charged twice"
    answer = stack.gw.predict("traced", {"text": text}, "user-1")
    assert list(answer.trace) == []  # not asked for: not returned, but kept
    record = stack.record(answer.prediction_id)
    assert json.loads(record["inputs_json"]) == {"text": text}
    kept = trace_from_json(record["trace_json"])
    assert [(c.name, c.module) for c in kept] == [("self", "Predict")]
    assert dict(kept[0].inputs) == {"text": text} and dict(kept[0].outputs) == dict(answer.outputs)
    assert kept[0].usage.lm_calls == 1
    assert record["capture_expires_at_us"] == 0  # retention 0: kept


def test_the_field_allowlist_keeps_only_those_fields(stack: Stack) -> None:
    stack.policy("allow", traces=True, inputs_outputs=True, fields=["label"])
    answer = stack.gw.predict("allow", {"text": "my email is jane@example.com"})
    record = stack.record(answer.prediction_id)
    assert record["inputs_json"] == ""  # "text" is not on the allowlist
    kept = trace_from_json(record["trace_json"])
    assert dict(kept[0].inputs) == {} and dict(kept[0].outputs) == {"label": answer.outputs["label"]}
    assert "jane@example.com" not in json.dumps(record)


def test_kept_values_are_scrubbed(stack: Stack) -> None:
    stack.policy("kept", traces=True, inputs_outputs=True)
    answer = stack.gw.predict("kept", {"text": "use api_key=abcd1234efgh5678ijkl for the refund"})
    record = stack.record(answer.prediction_id)
    assert "abcd1234efgh5678ijkl" not in record["inputs_json"] + record["trace_json"]
    assert "[redacted]" in json.loads(record["inputs_json"])["text"]


def test_captured_data_is_deleted_after_its_retention_and_only_then(stack: Stack) -> None:
    stack.policy("expiring", traces=True, inputs_outputs=True, retention_days=1)
    expiring = stack.gw.predict("expiring", {"text": "where is my parcel"}).prediction_id
    forever = stack.gw.predict("kept", {"text": "where is my parcel"}).prediction_id  # retention 0
    record = stack.record(expiring)
    assert record["capture_expires_at_us"] == record["recorded_at_us"] + DAY_US
    time.sleep(0.2)  # sweeps ran (every 0.05 s) before the day passed: nothing deleted
    assert stack.record(expiring)["trace_json"] and stack.record(expiring)["inputs_json"]
    stack.clock.offset += 2 * 86_400  # two days later
    assert wait_until(lambda: stack.record(expiring)["trace_json"] == "")
    cleared = stack.record(expiring)
    assert (cleared["inputs_json"], cleared["capture_expires_at_us"]) == ("", 0)
    assert cleared["version"] == "1.0.0" and cleared["outputs_json"] != "{}"  # the decision stays
    with sqlite3.connect(stack.predictions) as conn:  # the deletion is itself recorded
        recorded = conn.execute(
            "SELECT deployment, records, cutoff_us FROM capture_deletions WHERE deployment = 'expiring'"
        ).fetchall()
    conn.close()
    assert [(d, n) for d, n, _ in recorded] == [("expiring", 1)]
    assert recorded[0][2] >= record["capture_expires_at_us"]  # its cutoff: past the record's expiry
    assert stack.record(forever)["trace_json"] and stack.record(forever)["inputs_json"]


def test_a_policy_turned_off_keeps_nothing_more(stack: Stack) -> None:
    stack.policy("allow")  # every flag off
    assert not stack.gw.get_deployment_state("allow").capture.traces
    record = stack.record(stack.gw.predict("allow", {"text": "hello"}).prediction_id)
    assert (record["inputs_json"], record["trace_json"]) == ("", "")


def test_a_records_file_from_before_captures_gets_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.predictions"
    new = {"inputs_json", "trace_json", "capture_expires_at_us", "code_drift", "trace_id"}
    old_columns = [f.name for f in fields(PredictionRecord) if f.name not in new]
    marks = ", ".join("?" * len(old_columns))
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE predictions ({', '.join(old_columns)}, PRIMARY KEY (prediction_id))")
        conn.execute(
            f"INSERT INTO predictions ({', '.join(old_columns)}) VALUES ({marks})",
            ["old", "web", "p", "1.0.0", 1, "", "", 0.5, 1, "", 3, 1.0, "", 10, "{}", "", ""],
        )
    conn.close()
    store = SQLitePredictionStore(path, secret=b"s" * 32)
    try:
        old = store.get("old")
        assert (old.inputs_json, old.trace_json, old.capture_expires_at_us, old.code_drift) == ("", "", 0, "")
        assert old.trace_id == ""
        assert store.purge_expired(time.time_ns() // 1000) == 0
    finally:
        store.close()
