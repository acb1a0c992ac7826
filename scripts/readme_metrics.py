"""The README's /metrics excerpt, from a real run (`make readme-output`).

Starts both services from their entry points with `--metrics-port 0` on a fresh log (the
offline LM), runs one LabeledFewShot job, deploys it, sends three predictions, one outcome
and one labelled outcome that a metric evaluator scores, then reads each `/metrics` over
HTTP and prints the families the README describes, with the README's ports in place of
the ones the run picked.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.datasets import example_row, load_dataset
from dspyops.launch import ServiceProcess

SHOWN_OPTIMIZER, SHOWN_GATEWAY = 9100, 9101
# (metric name prefix, a label value that must appear): the lines the excerpt keeps
GATEWAY_LINES = (
    ('grpc_server_handled_total{grpc_code="OK",grpc_method="Predict"', ""),
    ('grpc_server_handling_seconds_count{grpc_method="Predict"', ""),
    ("dspyops_predictions_total", 'outcome="ok"'),
    ("dspyops_prediction_latency_seconds_count", ""),
    ("dspyops_outcomes_total", ""),
    ("dspyops_lm_calls_total", ""),
    ("dspyops_lm_tokens_total", ""),
    ("dspyops_gateway_log_position", ""),
    ("dspyops_log_head_position", ""),
    ("dspyops_gateway_log_lag", ""),
)
OPTIMIZER_LINES = (
    ('grpc_server_msg_sent_total{grpc_method="StartOptimization"', ""),
    ("dspyops_jobs{", 'state="succeeded"'),
    ("dspyops_job_trials", ""),
    ("dspyops_lm_calls_total", ""),
    ("dspyops_lm_tokens_total", ""),
    ("dspyops_log_head_position", ""),
    ("dspyops_log_subscribers", ""),
)


def _serve(name: str, args: list[str], tmp: Path) -> tuple[ServiceProcess, int]:
    """The service from its entry point (ServiceProcess: port file, SERVING) with
    `--metrics-port 0`; the metrics port it wrote (after the gRPC bind, so there by now)."""
    metrics = tmp / f"{name}.metrics-port"
    env = dict(os.environ, DSPY_CACHEDIR=str(tmp / "dspy-cache"))
    service = ServiceProcess(
        name, [*args, "--metrics-port", "0", "--metrics-port-file", str(metrics)], tmp, env
    )
    return service, int(metrics.read_text())


def _excerpt(port: int, shown: int, wanted: tuple[tuple[str, str], ...]) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        lines = [line for line in response.read().decode().splitlines() if not line.startswith("#")]
    kept = [line for prefix, must in wanted for line in lines if line.startswith(prefix) and must in line]
    return [f"$ curl -s 127.0.0.1:{shown}/metrics", *kept]


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    rows = [example_row(e) for e in load_dataset("support_tickets")[:8]]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        log = str(tmp / "ops.db")
        started: list[ServiceProcess] = []
        try:
            optimizer, opt_metrics = _serve("optimizer", ["optimizer", "--log", log, "--create"], tmp)
            started.append(optimizer)
            with OptimizerClient(optimizer.address) as opt:
                events = list(
                    opt.start_optimization(
                        "tickets", "text -> label", trainset=rows, optimizer="LabeledFewShot"
                    )
                )
                version = events[-1].completed.version
                opt.create_deployment("web", "tickets")
                head = opt.set_routes("web", {version: 1.0}).log_position
                flags = ["--canary-interval", "0", "--learning-interval", "0"]
                gateway, gw_metrics = _serve("gateway", ["gateway", "--log", log, *flags], tmp)
                started.append(gateway)
                with GatewayClient(gateway.address) as gw:
                    _wait(lambda: gw.list_deployment_states().log_position >= head, "the gateway")
                    gw.set_evaluator("web", "exact", metric="exact_match", share=1.0)
                    _wait(lambda: bool(gw.get_deployment_state("web").evaluators), "the evaluator")
                    answers = [
                        gw.predict("web", {"text": row["text"]}, f"user-{i}")
                        for i, row in enumerate(rows[:3])
                    ]
                    gw.record_outcome(answers[0].prediction_id, 1.0)
                    gw.record_outcome(answers[1].prediction_id, 1.0, expected={"label": rows[1]["label"]})
                    _wait(
                        lambda: gw.list_evaluators("web").evaluators[0].scored == 1, "the evaluator's score"
                    )
                    head = opt.read_log(limit=1).head
                    _wait(lambda: gw.list_deployment_states().log_position >= head, "the gateway")
                    lines = _excerpt(gw_metrics, SHOWN_GATEWAY, GATEWAY_LINES)
                lines += _excerpt(opt_metrics, SHOWN_OPTIMIZER, OPTIMIZER_LINES)
        finally:
            for service in reversed(started):
                service.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
