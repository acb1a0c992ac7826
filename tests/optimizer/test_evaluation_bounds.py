"""Evaluate and CompareVersions run in their own bounded executor, and stop when their
client has gone.

Before: they ran in asyncio's default thread pool (6 threads here), which the RPC
handlers' own `asyncio.to_thread` calls share: 8 evaluations against a stalling LM made
ListPrograms and SetRoutes time out, and an evaluation kept running (and was recorded)
after its client left.

The stalling LM: the version's offline LM carries an injected latency (LMConfig.latency_ms
lives in the artifact; the proto LMConfig has no such field), so the log is written here
directly, as bench/common.py and tests/e2e/test_graceful_shutdown.py do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.artifacts import encode_artifact
from dspyops.client import OptimizerClient, examples
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.evaluation.pool import EvaluationPool
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows, wait_until

SIGNATURE = "text -> label"
ROWS = ticket_rows()
LATENCY_MS = 400
CAP = 4


def slow_versions(path: Path, latency_ms: int) -> None:
    """Program `tickets` 1.0.0 and 1.1.0 (offline LM answering after latency_ms), and a
    deployment `web` serving 1.0.0."""
    spec = ProgramSpec(module="Predict", signature=SIGNATURE)
    store = open_store(str(path))
    try:
        registered = []
        for version, demos in (("1.0.0", 4), ("1.1.0", 8)):
            module = build_module(spec)
            module.demos = [dspy.Example(**row).with_inputs("text") for row in ROWS[:demos]]
            digest, artifact = encode_artifact(spec, program_state(module), LMConfig(latency_ms=latency_ms))
            registered.append(
                new_event(
                    pb.VersionRegistered(
                        program="tickets",
                        version=version,
                        spec=pb.ProgramSpec(module="Predict", signature=SIGNATURE),
                        lm=pb.LMConfig(model="offline/nearest-demo", max_tokens=512),
                        artifact_digest=digest,
                        artifact=artifact,
                        status=pb.DEVELOPMENT,
                        lineage=pb.Lineage(optimizer="test-fixture"),
                    )
                )
            )
        store.append("program-tickets", registered, 0)
        routes = pb.RoutesSet(deployment="web", routes=[pb.Route(version="1.0.0", weight=1.0)])
        created = pb.DeploymentCreated(deployment="web", program="tickets")
        store.append("deployment-web", [new_event(created), new_event(routes)], 0)
    finally:
        store.close()


@dataclass
class Served:
    client: OptimizerClient
    pool: EvaluationPool
    log: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    log = tmp_path / "log.db"
    slow_versions(log, LATENCY_MS)
    config = OptimizerConfig(log=str(log), data_dir=tmp_path / "data", max_evaluations=CAP)
    server = ServerThread(lambda: start(config))
    pool = server.running.evaluations
    assert pool is not None
    with OptimizerClient(server.address) as client:
        yield Served(client, pool, log)
    server.stop()


def evaluation(served: Served, n: int, timeout: float | None = None) -> Iterator[opb.EvaluationEvent]:
    """Evaluate 1.0.0 on n rows: the call's stream (a grpc call too: done(), cancel(), code())."""
    return served.client.evaluate("tickets", "1.0.0", dataset=ROWS[:n], timeout=timeout)


def recorded_evaluations(log: Path) -> int:
    store = open_store(str(log))
    try:
        return sum(1 for e in store.read(limit=10_000) if e.type == "dspyops.v1.EvaluationRecorded")
    finally:
        store.close()


def test_evaluations_beyond_the_cap_are_refused_and_other_rpcs_keep_answering(served: Served) -> None:
    streams = [evaluation(served, 30) for _ in range(8)]
    # the stub's future: this comparison must be cancelled while it runs (the client's blocks)
    comparison = served.client.stub.CompareVersions.future(
        opb.CompareVersionsRequest(program="tickets", a="1.0.0", b="1.1.0", dataset=examples(ROWS[:30]))
    )
    try:
        assert wait_until(lambda: sum(s.done() for s in streams) + comparison.done() >= 5, timeout=30)
        refused = [s for s in streams if s.done()] + ([comparison] if comparison.done() else [])
        assert len(refused) == 5 and served.pool.running == CAP
        for call in refused:
            assert call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, call.details()
            assert f"at most {CAP} evaluations" in call.details() and "--max-evaluations" in call.details()
        # the RPC handlers' worker threads are free: reads and commands answer meanwhile
        for _ in range(5):
            assert [p.program for p in served.client.list_programs().programs] == ["tickets"]
            deployment = served.client.set_routes("web", {"1.1.0": 1.0})
            assert deployment.routes[0].version == "1.1.0"
            assert served.pool.running == CAP  # ... while the evaluations still run
    finally:
        for call in [*streams, comparison]:
            call.cancel()
    assert wait_until(lambda: served.pool.running == 0, timeout=30)


def test_a_cancelled_evaluation_stops_its_lm_calls_and_records_nothing(served: Served) -> None:
    n = 20
    stream = evaluation(served, n)
    first = next(stream)  # one example done: its LM call was made
    assert first.WhichOneof("kind") == "progress" and first.progress.done == 1
    stream.cancel()
    assert wait_until(lambda: served.pool.running == 0, timeout=30), "the evaluation kept running"
    calls = served.pool.lm_calls
    print(f"\ncancelled after 1 of {n} examples: {calls} LM calls made")
    assert 1 <= calls < n  # at most the calls in flight when the client left, not the rest
    assert recorded_evaluations(served.log) == 0


def test_an_evaluation_past_its_deadline_stops_too(served: Served) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(evaluation(served, 20, timeout=1.5))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_until(lambda: served.pool.running == 0, timeout=30), "the evaluation kept running"
    assert served.pool.lm_calls < 20
    assert recorded_evaluations(served.log) == 0


def test_a_finished_evaluation_is_still_recorded_and_frees_its_slot(served: Served) -> None:
    events = list(evaluation(served, 2))
    assert events[-1].WhichOneof("kind") == "report" and events[-1].report.examples == 2
    assert served.pool.lm_calls == 2
    assert recorded_evaluations(served.log) == 1
    assert wait_until(lambda: served.pool.running == 0, timeout=10)


def test_a_cancelled_comparison_stops_its_lm_calls(served: Served) -> None:
    request = opb.CompareVersionsRequest(program="tickets", a="1.0.0", b="1.1.0", dataset=examples(ROWS[:20]))
    future = served.client.stub.CompareVersions.future(request)  # the stub's: cancelled while it runs
    assert wait_until(lambda: served.pool.lm_calls >= 1, timeout=30)
    future.cancel()
    assert wait_until(lambda: served.pool.running == 0, timeout=30), "the comparison kept running"
    assert served.pool.lm_calls < 40


def test_pool_shutdown_stops_running_evaluations(served: Served) -> None:
    stream = evaluation(served, 20)
    assert next(stream).WhichOneof("kind") == "progress"
    done = threading.Event()
    threading.Thread(target=lambda: (served.pool.shutdown(), done.set())).start()
    assert done.wait(10)  # shutdown does not wait for the LM
    with pytest.raises(grpc.RpcError) as info:
        list(stream)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "stopped" in info.value.details()
    assert wait_until(lambda: served.pool.running == 0, timeout=30)
