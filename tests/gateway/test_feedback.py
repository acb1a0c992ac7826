"""Feedback from live traffic, through the real servers, with the records on SQLite and on
PostgreSQL: RecordOutcome takes `expected` (output fields of the served version only),
ExportFeedback returns the labelled examples (captured inputs + expected) in time order,
paged, counting the labelled predictions that kept no inputs; `dspyops feedback export`
writes them as a dataset file that StartOptimization's trainset_ref reads."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from dspyops.cli.main import main
from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:12]


@dataclass
class Stack:
    opt: OptimizerClient
    gateways: list[GatewayClient]
    addresses: list[str]
    datasets: Path

    @property
    def gw(self) -> GatewayClient:
        return self.gateways[0]

    def caught_up(self) -> None:
        head = self.opt.read_log(0, 1).head
        for gw in self.gateways:
            assert wait_until(functools.partial(_at_least, gw, head))

    def capture(self, deployment: str, on: bool) -> None:
        self.opt.set_capture_policy(deployment, inputs_outputs=on, reason="test")
        self.caught_up()


def _at_least(gw: GatewayClient, position: int) -> bool:
    return gw.list_deployment_states().log_position >= position


def _stack(tmp: Path, log: str, gateways: int, predictions: str = "") -> Iterator[Stack]:
    datasets = tmp / "datasets"
    datasets.mkdir()
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data", datasets_dir=datasets))
    )
    servers: list[ServerThread] = []
    with OptimizerClient(optimizer.address) as opt:
        events = list(
            opt.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        assert events[-1].WhichOneof("kind") == "completed"
        for name in ("web", "other"):
            opt.create_deployment(name, "tickets")
            opt.set_routes(name, {"1.0.0": 1.0})
        for _ in range(gateways):
            config = GatewayConfig(log=log, predictions=predictions, canary_interval=0)
            servers.append(ServerThread(functools.partial(start_gateway, config)))
        clients = [GatewayClient(s.address) for s in servers]
        try:
            stack = Stack(opt, clients, [s.address for s in servers], datasets)
            stack.caught_up()
            yield stack
        finally:
            for client in clients:
                client.close()
            for server in servers:
                server.stop()
    optimizer.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "sqlite":
        yield from _stack(tmp_path, str(tmp_path / "log.db"), 1)
    else:  # two gateways sharing the records in the log's database
        yield from _stack(tmp_path, request.getfixturevalue("postgres_url"), 2)


def _all(gw: GatewayClient, deployment: str, **kw: object) -> tuple[list[gpb.FeedbackExample], int]:
    examples: list[gpb.FeedbackExample] = []
    skipped, token = 0, ""
    while True:
        page = gw.export_feedback(deployment, page_token=token, **kw)  # type: ignore[arg-type]
        examples.extend(page.examples)
        skipped += page.skipped
        token = page.next_page_token
        if not token:
            return examples, skipped


def _refused(call: object, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()  # type: ignore[operator]
    assert err.value.code() == code, err.value.details()
    return str(err.value.details())


def test_expected_takes_output_fields_of_the_served_version_only(stack: Stack) -> None:
    answer = stack.gw.predict("web", {"text": "refund please"})
    details = _refused(
        lambda: stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"txt" * 30: "x"}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("expected:") and "not an output field" in details and "label" in details
    assert len(details) < 300  # keys are bounded (100 characters) and echoed through shown()
    details = _refused(  # an input field is no output
        lambda: stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"text": "x"}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("expected:")
    details = _refused(
        lambda: stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": "x" * 30_000}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "expected" in details and "x" * 100 not in details
    # nothing was recorded by the refusals: the outcome is still free
    recorded = stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": "refund"})
    assert recorded.version == "1.0.0"


def test_a_retry_with_other_expected_outputs_is_a_reused_request_id(stack: Stack) -> None:
    answer = stack.gw.predict("web", {"text": "refund please"})
    stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": "refund"}, request_id="r-1")
    stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": "refund"}, request_id="r-1")
    details = _refused(
        lambda: stack.gw.record_outcome(
            answer.prediction_id, 1.0, expected={"label": "billing"}, request_id="r-1"
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert details.startswith("request_id:")


def test_export_returns_the_labelled_examples_in_time_order_and_counts_the_skipped(stack: Stack) -> None:
    uncaptured = stack.gw.predict("web", {"text": "no capture yet"}).prediction_id
    stack.capture("web", True)
    texts = [f"parcel {i} never arrived" for i in range(5)]
    ids = [stack.gw.predict("web", {"text": t}).prediction_id for t in texts]
    other = stack.gw.predict("other", {"text": "another deployment"}).prediction_id
    last = stack.gateways[-1]  # PostgreSQL: the outcomes go to the other gateway
    last.record_outcome(uncaptured, 0.0, expected={"label": "shipping"})
    for i, prediction_id in enumerate(ids):
        if i == 2:
            last.record_outcome(prediction_id, 1.0)  # no expected: a score, not a label
        else:
            last.record_outcome(prediction_id, float(i % 2), expected={"label": f"label-{i}"})
    last.record_outcome(other, 1.0, expected={"label": "other"})

    for gw in stack.gateways:  # every gateway answers with every gateway's feedback
        examples, skipped = _all(gw, "web", limit=2)  # several pages
        assert skipped == 1
        assert [e.prediction_id for e in examples] == [ids[0], ids[1], ids[3], ids[4]]
        assert [dict(e.inputs) for e in examples] == [{"text": texts[i]} for i in (0, 1, 3, 4)]
        assert [dict(e.expected) for e in examples] == [{"label": f"label-{i}"} for i in (0, 1, 3, 4)]
        assert [e.value for e in examples] == [0.0, 1.0, 1.0, 0.0]
        assert {e.version for e in examples} == {"1.0.0"}
        times = [e.recorded_at.ToMicroseconds() for e in examples]
        assert times == sorted(times)

    examples, _ = _all(stack.gw, "web")
    middle = examples[1].recorded_at.ToDatetime(tzinfo=UTC)
    after, _ = _all(stack.gw, "web", since=middle)
    assert [e.prediction_id for e in after] == [ids[1], ids[3], ids[4]]
    before, _ = _all(stack.gw, "web", until=middle)
    assert [e.prediction_id for e in before] == [ids[0]]
    assert _all(stack.gw, "web", since=datetime.now(UTC) + timedelta(days=1)) == ([], 0)


def test_export_refuses_bad_requests_by_field(stack: Stack) -> None:
    cases = [
        (lambda: stack.gw.export_feedback(""), grpc.StatusCode.INVALID_ARGUMENT, "deployment"),
        (lambda: stack.gw.export_feedback("ghost"), grpc.StatusCode.NOT_FOUND, "deployment"),
        (lambda: stack.gw.export_feedback("web", limit=5001), grpc.StatusCode.INVALID_ARGUMENT, "limit"),
        (
            lambda: stack.gw.export_feedback("web", page_token="x" * 500),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token",
        ),
        (
            lambda: stack.gw.export_feedback(
                "web", since=datetime(2026, 1, 2, tzinfo=UTC), until=datetime(2026, 1, 1, tzinfo=UTC)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "until",
        ),
    ]
    for call, code, field in cases:
        details = _refused(call, code)
        assert details.startswith(f"{field}:"), details
        assert "x" * 100 not in details


def test_feedback_export_writes_a_dataset_that_an_optimization_trains_on(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.capture("web", True)
    start = datetime.now(UTC) - timedelta(seconds=1)
    kept = []
    for row in ROWS[:6]:
        answer = stack.gw.predict("web", {"text": row["text"]})
        stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": row["label"]})
        kept.append({"text": row["text"], "label": row["label"]})
    stack.capture("web", False)
    blind = stack.gw.predict("web", {"text": "not kept"}).prediction_id
    stack.gw.record_outcome(blind, 0.0, expected={"label": "billing"})

    target = stack.datasets / "feedback.jsonl"
    capsys.readouterr()
    since = start.isoformat().replace("+00:00", "Z")
    code = main(
        ["--gateway", stack.addresses[-1], "feedback", "export", "web", "--since", since, "--to", str(target)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "6 examples written" in out and "1 skipped" in out
    assert [json.loads(line) for line in target.read_text().splitlines()] == kept

    events = list(
        stack.opt.start_optimization(
            "tickets", "text -> label", trainset_ref="feedback.jsonl", optimizer="LabeledFewShot"
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    assert events[-1].completed.version == "1.1.0"


def test_a_hand_edited_record_is_skipped_not_a_server_error(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    for stack in _stack(tmp_path, log, 1):
        stack.capture("web", True)
        broken, fine = (stack.gw.predict("web", {"text": t}).prediction_id for t in ("one", "two"))
        for prediction_id in (broken, fine):
            stack.gw.record_outcome(prediction_id, 1.0, expected={"label": "refund"})
        with sqlite3.connect(f"{log}.predictions") as conn:
            conn.execute("UPDATE predictions SET inputs_json = '{not json' WHERE prediction_id = ?", [broken])
        conn.close()
        examples, skipped = _all(stack.gw, "web")
        assert [e.prediction_id for e in examples] == [fine] and skipped == 1


def test_expected_outputs_are_scrubbed_like_captured_inputs(stack: Stack) -> None:
    stack.capture("web", True)
    answer = stack.gw.predict("web", {"text": "refund please"})
    label = "use api_key=abcd1234efgh5678ijkl"
    stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": label}, request_id="s-1")
    stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": label}, request_id="s-1")  # a retry
    (example,), _ = _all(stack.gw, "web")
    assert "abcd1234efgh5678ijkl" not in example.expected["label"]
    assert "[redacted]" in example.expected["label"]


def test_a_dataset_can_name_a_deployments_feedback_directly(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--dataset feedback:web[@SINCE]` trains on the deployment's labelled examples, read
    from the gateway page by page, with no file in between."""
    stack.capture("web", True)
    start = datetime.now(UTC) - timedelta(seconds=1)
    for row in ROWS[:5]:
        answer = stack.gw.predict("web", {"text": row["text"]})
        stack.gw.record_outcome(answer.prediction_id, 1.0, expected={"label": row["label"]})
    since = start.isoformat().replace("+00:00", "Z")
    job = ["--optimizer", stack.opt.address, "--gateway", stack.addresses[-1], "jobs", "start", "tickets"]
    job += ["--signature", "text -> label", "-O", "LabeledFewShot", "--val-fraction", "0"]
    capsys.readouterr()
    code = main([*job, "--dataset", f"feedback:web@{since}", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    accepted = next(json.loads(line)["accepted"] for line in out.splitlines() if "accepted" in line)
    assert accepted["trainset_size"] == 5
    # nothing labelled in that deployment: a clear error, and no job
    jobs_before = len(stack.opt.list_jobs().jobs)
    with pytest.raises(SystemExit, match="other has no labelled feedback"):
        main([*job, "--dataset", "feedback:other"])
    assert len(stack.opt.list_jobs().jobs) == jobs_before
