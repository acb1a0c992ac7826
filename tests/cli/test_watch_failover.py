"""watch_job with targets, at its edges (the takeover itself: tests/e2e/test_watch_across_replicas.py):
an address that is gone is skipped, an answer that is not UNAVAILABLE is the answer (no
other replica is asked), and when every address is gone the watch gives up with UNAVAILABLE."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import grpc
import pytest

from dspyops.client import OptimizerClient
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows


def _gone() -> str:
    with socket.socket() as probe:  # bound and closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("failover")
    server = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    with OptimizerClient(server.address) as opt:
        events = list(
            opt.start_optimization(
                "tickets", "text -> label", trainset=ticket_rows()[:10], optimizer="LabeledFewShot"
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
        yield server.address, events[0].job_id
    server.stop()


def test_a_gone_address_is_skipped(served: tuple[str, str]) -> None:
    address, job_id = served
    with OptimizerClient(address) as opt:
        direct = [e.stream_version for e in opt.watch_job(job_id) if e.WhichOneof("kind") != "progress"]
    with OptimizerClient(_gone()) as opt:
        events = opt.watch_job(job_id, targets=[_gone(), address])
        through = [e.stream_version for e in events if e.WhichOneof("kind") != "progress"]
    assert through == direct and direct == list(range(1, len(direct) + 1))


def test_an_answer_other_than_unavailable_is_the_answer(served: tuple[str, str]) -> None:
    address, _ = served
    with OptimizerClient(address) as opt, pytest.raises(grpc.RpcError) as err:
        list(opt.watch_job("no-such-job", targets=[_gone()]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_every_address_gone_gives_up_with_unavailable() -> None:
    with OptimizerClient(_gone()) as opt, pytest.raises(grpc.RpcError) as err:
        list(opt.watch_job("j", targets=[_gone(), _gone()]))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
