"""The README's /metrics excerpt, from a real run (`make readme-output`).

Starts both services from their entry points with `--metrics-port 0` on a fresh log (the
offline LM), runs one LabeledFewShot job, deploys it, sends three predictions, one outcome
and one labelled outcome that a metric evaluator scores, then reads each `/metrics` over
HTTP and prints the families the README describes, with the README's ports in place of
the ones the run picked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient

ROOT = Path(__file__).resolve().parent.parent
TICKETS = ROOT / "dspyops" / "data" / "support_tickets.jsonl"
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


def _serve(module: str, log: Path, tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int, int]:
    port, metrics = tmp / f"{module}.port", tmp / f"{module}.metrics-port"
    command = [sys.executable, "-m", module, "--log", str(log), "--port", "0", "--port-file", str(port)]
    command += ["--metrics-port", "0", "--metrics-port-file", str(metrics), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    deadline = time.monotonic() + 120
    while not (port.exists() and port.read_text() and metrics.exists() and metrics.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{module} did not start")
        time.sleep(0.1)
    return process, int(port.read_text()), int(metrics.read_text())


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
    rows = [json.loads(line) for line in TICKETS.read_text().splitlines() if line.strip()][:8]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ.setdefault("DSPY_CACHEDIR", str(tmp / "dspy-cache"))
        log = tmp / "ops.db"
        optimizer, opt_port, opt_metrics = _serve("optimizer_svc", log, tmp, "--create")
        gateway = None
        try:
            with OptimizerClient(f"127.0.0.1:{opt_port}") as opt:
                events = list(
                    opt.start_optimization(
                        "tickets", "text -> label", trainset=rows, optimizer="LabeledFewShot"
                    )
                )
                version = events[-1].completed.version
                opt.create_deployment("web", "tickets")
                head = opt.set_routes("web", {version: 1.0}).log_position
                gateway, gw_port, gw_metrics = _serve(
                    "gateway_svc", log, tmp, "--canary-interval", "0", "--learning-interval", "0"
                )
                with GatewayClient(f"127.0.0.1:{gw_port}") as gw:
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
            for process in (gateway, optimizer):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=60)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
