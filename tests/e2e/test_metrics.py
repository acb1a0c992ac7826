"""Prometheus metrics (--metrics-port): real servers with metrics_port=0, driven with the real
clients, each server's /metrics scraped over HTTP and parsed with prometheus_client's own
parser. Each family's values follow from what the module did."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.tracing import ROOT_NAME
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows, wait_until
from tests.support.refused import after_a_refused_call
from tests.support.scrape import Samples, scrape, value

ROWS = ticket_rows()[:8]
PREDICTS = 3
OPTIMIZER = "/dspyops.v1.Optimizer"
GATEWAY = "/dspyops.v1.Gateway"


def rpc_labels(path: str, kind: str = "UNARY") -> dict[str, str]:
    service, method = path.lstrip("/").rsplit("/", 1)
    return {"grpc_service": service, "grpc_method": method, "grpc_type": kind}


@dataclass
class Cluster:
    opt: OptimizerClient
    gw: GatewayClient
    optimizer: ServerThread
    gateway: ServerThread
    version: str
    job_events: int  # messages StartOptimization streamed
    job_usage: pb.Usage  # its JobCompleted's
    job_trials: int
    bad_code: grpc.StatusCode
    log: str
    answers: list[gpb.PredictResponse]  # with their traces: each module call's LM usage

    def scrape_optimizer(self) -> Samples:
        assert self.optimizer.running.metrics is not None
        return scrape(self.optimizer.running.metrics.port)

    def scrape_gateway(self) -> Samples:
        assert self.gateway.running.metrics is not None
        return scrape(self.gateway.running.metrics.port)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("metrics")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start(OptimizerConfig(log=log, data_dir=tmp / "data", metrics_port=0)))
    with OptimizerClient(optimizer.address) as opt:
        events = list(
            opt.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        assert events[-1].WhichOneof("kind") == "completed"
        job = opt.list_jobs().jobs[0]
        (version,) = (v.version for v in opt.list_versions("tickets").versions)
        opt.create_deployment("web", "tickets")
        deployment = opt.set_routes("web", {version: 1.0})
        config = GatewayConfig(log=log, canary_interval=0, learning_interval=0, metrics_port=0)
        gateway = ServerThread(lambda: start_gateway(config))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= deployment.log_position)
            gw.set_evaluator("web", "exact", metric="exact_match", share=1.0)  # scores labelled outcomes
            assert wait_until(
                lambda: [e.name for e in gw.get_deployment_state("web").evaluators] == ["exact"]
            )
            answers = [
                gw.predict("web", {"text": f"my invoice is wrong {i}"}, f"user-{i}", include_trace=True)
                for i in range(PREDICTS)
            ]
            with pytest.raises(grpc.RpcError) as bad:
                gw.predict("", {"text": "x"})
            gw.record_outcome(answers[0].prediction_id, 1.0)
            gw.record_outcome(answers[1].prediction_id, 0.0, expected={"label": "billing"})
            yield Cluster(
                opt,
                gw,
                optimizer,
                gateway,
                version,
                len(events),
                events[-1].completed.usage,
                job.trials,
                bad.value.code(),
                log,
                answers,
            )
        gateway.stop()
    optimizer.stop()


def test_handled_counts_each_predict_with_its_code(cluster: Cluster) -> None:
    samples = cluster.scrape_gateway()
    predict = rpc_labels(f"{GATEWAY}/Predict")
    assert value(samples, "grpc_server_handled_total", **predict, grpc_code="OK") == PREDICTS
    assert cluster.bad_code == grpc.StatusCode.INVALID_ARGUMENT
    assert value(samples, "grpc_server_handled_total", **predict, grpc_code="INVALID_ARGUMENT") == 1
    assert value(samples, "grpc_server_started_total", **predict) == PREDICTS + 1


def test_messages_received_and_sent(cluster: Cluster) -> None:
    samples = cluster.scrape_gateway()
    predict = rpc_labels(f"{GATEWAY}/Predict")
    assert value(samples, "grpc_server_msg_received_total", **predict) == PREDICTS + 1
    assert value(samples, "grpc_server_msg_sent_total", **predict) == PREDICTS  # the refused one sent none


def test_server_stream_counts_each_message_sent(cluster: Cluster) -> None:
    samples = cluster.scrape_optimizer()
    start_job = rpc_labels(f"{OPTIMIZER}/StartOptimization", "SERVER_STREAM")
    assert value(samples, "grpc_server_msg_sent_total", **start_job) == cluster.job_events
    assert value(samples, "grpc_server_handled_total", **start_job, grpc_code="OK") == 1


def test_handling_seconds_histogram_counts_each_call(cluster: Cluster) -> None:
    samples = cluster.scrape_gateway()
    predict = rpc_labels(f"{GATEWAY}/Predict")
    assert value(samples, "grpc_server_handling_seconds_count", **predict) == PREDICTS + 1
    assert value(samples, "grpc_server_handling_seconds_bucket", **predict, le="+Inf") == PREDICTS + 1


def test_unauthenticated_calls_are_counted(tmp_path: Path) -> None:
    with after_a_refused_call(tmp_path, metrics_port=0) as gateway:
        assert gateway.running.metrics is not None
        port = gateway.running.metrics.port
        listed = rpc_labels(f"{GATEWAY}/ListDeploymentStates")
        # the status may reach the client before the server's handler has unwound (and counted)
        assert wait_until(
            lambda: (
                value(scrape(port), "grpc_server_handled_total", **listed, grpc_code="UNAUTHENTICATED") == 1
            )
        )


def test_predictions_by_deployment_version_and_outcome(cluster: Cluster) -> None:
    samples = cluster.scrape_gateway()
    served = {"deployment": "web", "version": cluster.version}
    assert value(samples, "dspyops_predictions_total", **served, outcome="ok") == PREDICTS
    assert value(samples, "dspyops_predictions_total", **served, outcome="error") == 0
    assert value(samples, "dspyops_prediction_latency_seconds_count", **served) == PREDICTS


def test_outcomes_by_source(cluster: Cluster) -> None:
    web = {"deployment": "web"}
    # the labelled outcome is scored by the metric evaluator, off the request's path
    assert wait_until(
        lambda: (
            value(cluster.scrape_gateway(), "dspyops_outcomes_total", **web, source="evaluator:exact") == 1
        )
    )
    samples = cluster.scrape_gateway()
    assert value(samples, "dspyops_outcomes_total", **web, source="human", kind="value") == 1
    assert value(samples, "dspyops_outcomes_total", **web, source="human", kind="expected") == 1
    assert value(samples, "dspyops_outcomes_total", **web, source="evaluator:exact", kind="score") == 1
    assert value(samples, "dspyops_outcomes_total") == 3


def test_lm_calls_tokens_and_cost_of_predictions_by_connection_and_model(cluster: Cluster) -> None:
    """The gateway's count of DSPy's usage reports, against each prediction's own trace (the
    root module call sums every LM call the program made, through the same DSPy hook)."""
    roots = [next(c for c in answer.trace if c.name == ROOT_NAME) for answer in cluster.answers]
    assert all(root.usage.lm_calls == 1 for root in roots)  # one Predict stage: one call each
    lm = {"connection": "offline", "model": "offline/nearest-demo"}
    samples = cluster.scrape_gateway()
    assert value(samples, "dspyops_lm_calls_total", **lm) == PREDICTS
    assert value(samples, "dspyops_lm_calls_total") == PREDICTS  # the evaluator's metric calls no LM
    inputs = sum(root.usage.input_tokens for root in roots)
    outputs = sum(root.usage.output_tokens for root in roots)
    assert inputs > 0 and outputs > 0
    assert value(samples, "dspyops_lm_tokens_total", **lm, direction="input") == inputs
    assert value(samples, "dspyops_lm_tokens_total", **lm, direction="output") == outputs
    assert value(samples, "dspyops_lm_cost_usd_total", **lm) == 0  # offline: no price, no reported cost


def test_jobs_by_optimizer_and_state_and_trials(cluster: Cluster) -> None:
    samples = cluster.scrape_optimizer()
    assert value(samples, "dspyops_jobs", optimizer="LabeledFewShot", state="succeeded") == 1
    assert value(samples, "dspyops_jobs", state="running") == 0
    assert value(samples, "dspyops_job_trials", optimizer="LabeledFewShot") == cluster.job_trials


def test_lm_calls_tokens_and_cost_of_jobs_by_connection_and_model(cluster: Cluster) -> None:
    used = cluster.job_usage
    assert used.lm_calls > 0 and used.input_tokens > 0  # the offline LM counts words as tokens
    lm = {"connection": "offline", "model": "offline/nearest-demo"}

    def counted() -> bool:  # when the attempt's thread has ended, just after its last event
        return value(cluster.scrape_optimizer(), "dspyops_lm_calls_total", **lm) == used.lm_calls

    assert wait_until(counted)
    samples = cluster.scrape_optimizer()
    assert value(samples, "dspyops_lm_replayed_calls_total", **lm) == used.replayed_lm_calls
    assert value(samples, "dspyops_lm_tokens_total", **lm, direction="input") == used.input_tokens
    assert value(samples, "dspyops_lm_tokens_total", **lm, direction="output") == used.output_tokens
    assert value(samples, "dspyops_lm_cost_usd_total", **lm) == used.cost_usd


def test_gateway_position_and_lag_follow_the_head(cluster: Cluster) -> None:
    head = cluster.opt.read_log(limit=1).head
    assert value(cluster.scrape_optimizer(), "dspyops_log_head_position") == head

    def caught_up() -> bool:
        samples = cluster.scrape_gateway()
        return (
            value(samples, "dspyops_gateway_log_position") == head
            and value(samples, "dspyops_log_head_position") == head
            and value(samples, "dspyops_gateway_log_lag") == 0
        )

    assert wait_until(caught_up)


def test_records_queue_depth_is_empty_once_committed(cluster: Cluster) -> None:
    samples = cluster.scrape_gateway()
    assert ("dspyops_records_queue_depth", frozenset()) in samples  # exported, and ...
    assert value(samples, "dspyops_records_queue_depth") == 0  # ... every predict returned after its commit


def test_subscribers_count_open_streams(cluster: Cluster) -> None:
    stream = cluster.opt.subscribe_log(after=0)
    next(iter(stream))  # the stream is open on the server once its first event arrived
    assert value(cluster.scrape_optimizer(), "dspyops_log_subscribers") == 1
    stream.cancel()  # type: ignore[attr-defined]  # the client hands back the grpc call
    assert wait_until(lambda: value(cluster.scrape_optimizer(), "dspyops_log_subscribers") == 0)


def test_the_entry_point_serves_metrics(cluster: Cluster, tmp_path: Path) -> None:
    port_file, metrics_file = tmp_path / "port", tmp_path / "metrics-port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway_svc",
            "--log",
            cluster.log,
            "--predictions",
            str(tmp_path / "predictions.db"),
            "--canary-interval",
            "0",
            "--learning-interval",
            "0",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--metrics-port",
            "0",
            "--metrics-port-file",
            str(metrics_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        assert wait_until(lambda: port_file.exists() and bool(port_file.read_text()), timeout=60)
        with GatewayClient(f"127.0.0.1:{port_file.read_text()}") as gw:
            gw.list_deployment_states()
        samples = scrape(int(metrics_file.read_text()))
        listed = rpc_labels(f"{GATEWAY}/ListDeploymentStates")
        assert value(samples, "grpc_server_handled_total", **listed, grpc_code="OK") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "dspyops.json"
_METRIC = re.compile(r"\b(?:dspyops|grpc_server)_[a-z0-9_]+")


def test_the_dashboard_uses_only_exported_metrics(cluster: Cluster) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        names = {name for target in panel["targets"] for name in _METRIC.findall(target["expr"])}
        assert names, f"panel {panel['title']!r} uses none of our metrics"
        used |= names
    for variable in dashboard["templating"]["list"]:
        used |= set(_METRIC.findall(str(variable.get("query", ""))))
    exported = {name for name, _ in cluster.scrape_optimizer() | cluster.scrape_gateway()}
    assert used - exported == set()
    assert {"dspyops_prediction_latency_seconds_bucket", "dspyops_gateway_log_lag", "dspyops_jobs"} <= used
