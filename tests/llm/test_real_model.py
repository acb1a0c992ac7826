"""A real (tiny) model behind the real servers: ``make test-llm`` only.

``make test-llm`` starts llama-cpp-python's OpenAI-compatible server with SmolLM2-135M
(scripts/llm_server.py) and sets ``DSPYOPS_LLM_API_BASE``; without it every test here is
skipped, so plain ``pytest`` neither needs nor imports anything model-related.

SmolLM2-135M is toy-level and often breaks DSPy's output format, so these tests assert
plumbing, never accuracy: the job ends Completed (or Failed with an error message, not a
crash), the servers keep serving, and each prediction either answers or fails with
FAILED_PRECONDITION naming the version, with the failure counted in the prediction records.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

API_BASE = os.environ.get("DSPYOPS_LLM_API_BASE", "")
pytestmark = [
    pytest.mark.skipif(not API_BASE, reason="needs a model server: run `make test-llm`"),
    pytest.mark.timeout(600),
]

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:8], ROWS[30:34]
QUESTIONS = [row["text"] for row in ROWS[50:53]]


def lm_config() -> pb.LMConfig:
    return pb.LMConfig(connection="local", model="local", max_tokens=64, temperature=0)


def connections_file(tmp: Path) -> Path:
    """The llama.cpp server as an LM connection: no key (it takes any, and gets the placeholder)."""
    path = tmp / "connections.toml"
    path.write_text(
        f'[connections.local]\napi_base = "{API_BASE}"\nmodels = ["local"]\nmax_tokens_cap = 256\n'
    )
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, GatewayClient, Path]]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetches by litellm
    tmp = tmp_path_factory.mktemp("llm")
    log = tmp / "log.db"
    predictions = tmp / "gateway.predictions"
    connections = str(connections_file(tmp))
    optimizer = ServerThread(
        lambda: start_optimizer(
            OptimizerConfig(log=str(log), data_dir=tmp / "data", lm_connections=connections)
        )
    )
    gateway = ServerThread(
        lambda: start_gateway(
            GatewayConfig(log=str(log), predictions=str(predictions), lm_connections=connections)
        )
    )
    try:
        with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address, timeout=180) as gw:
            yield opt, gw, predictions
    finally:
        gateway.stop()
        optimizer.stop()


def test_optimization_and_predictions_with_a_real_model(
    stack: tuple[OptimizerClient, GatewayClient, Path],
) -> None:
    opt, gw, predictions = stack
    started = time.monotonic()
    events = list(
        opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=TRAIN,
            valset=VAL,
            optimizer="LabeledFewShot",
            params={"k": 4},
            lm=lm_config(),
        )
    )
    wall = time.monotonic() - started
    last = events[-1]
    kind = last.WhichOneof("kind")
    assert kind in {"completed", "failed"}, f"job ended {kind}"
    if kind == "failed":
        assert last.failed.error  # a clear message, not a crash
        print(f"\njob FAILED in {wall:.1f}s: {last.failed.error}")
        assert opt.get_job(last.job_id)  # the server still answers
        return
    done = last.completed
    assert done.version == "1.0.0" and done.usage.lm_calls > 0
    assert 0.0 <= done.baseline_score <= 1.0 and 0.0 <= done.final_score <= 1.0
    print(
        f"\njob completed in {wall:.1f}s (server wall {done.wall_seconds:.1f}s): "
        f"baseline {done.baseline_score:.2f} -> final {done.final_score:.2f} on {len(VAL)} examples; "
        f"{done.usage.lm_calls} LM calls, "
        f"{done.usage.input_tokens} in / {done.usage.output_tokens} out tokens"
    )

    opt.create_deployment("web", "tickets")
    routed = opt.set_routes("web", {"1.0.0": 1.0})
    assert wait_until(lambda: gw.get_deployment_state("web").log_position >= routed.log_position, 10)

    answered, failed, seconds = 0, 0, []
    for i, text in enumerate(QUESTIONS):
        t0 = time.monotonic()
        try:
            response = gw.predict("web", {"text": text}, routing_key=f"user-{i}")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
            assert "version 1.0.0" in err.details() and "records the failure" in err.details()
            failed += 1
        else:
            assert response.version == "1.0.0" and set(response.outputs) == {"label"}
            answered += 1
        seconds.append(time.monotonic() - t0)
    print(
        f"predictions: {answered} answered, {failed} failed; seconds per prediction "
        f"{', '.join(f'{s:.1f}' for s in seconds)}"
    )

    with sqlite3.connect(predictions) as db:
        rows = db.execute("SELECT error FROM predictions WHERE deployment = 'web'").fetchall()
    assert len(rows) == len(QUESTIONS)
    assert sum(1 for (error,) in rows if error) == failed
    # Both servers are still up and serving.
    assert gw.get_deployment_state("web").log_position >= routed.log_position
    assert opt.get_version("tickets", "1.0.0").version == "1.0.0"
