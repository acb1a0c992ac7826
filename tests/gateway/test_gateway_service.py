"""gateway_svc end to end: the optimizer writes the log, gateways (tailing the file, and
tailing the optimizer's SubscribeLog) serve predictions from it."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import ANY, NewEvent, open_store
from dspyops.fold import fold, state_hash
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, str, Path]]:
    tmp = tmp_path_factory.mktemp("gateway")
    log = tmp / "log.db"
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=str(log), data_dir=tmp / "data")))
    with OptimizerClient(optimizer.address) as opt:
        for k in (8, 4):  # two artifacts: two versions
            events = list(
                opt.start_optimization(
                    "tickets",
                    "text -> label",
                    trainset=TRAIN,
                    valset=VAL,
                    optimizer="LabeledFewShot",
                    params={"k": k},
                )
            )
            assert events[-1].WhichOneof("kind") == "completed"
        opt.create_deployment("web", "tickets")
        opt.set_routes("web", {"1.0.0": 0.5, "1.1.0": 0.5})
        opt.create_deployment("empty", "tickets")
        yield opt, optimizer.address, log
    optimizer.stop()


@pytest.fixture(scope="module", params=["file", "remote"])
def gateway(
    request: pytest.FixtureRequest, stack: tuple[OptimizerClient, str, Path]
) -> Iterator[GatewayClient]:
    _, address, log = stack
    remote = GatewayConfig(optimizer=address, predictions=str(log.parent / "remote.predictions"))
    config = GatewayConfig(log=str(log)) if request.param == "file" else remote
    thread = ServerThread(lambda: start_gateway(config))
    with GatewayClient(thread.address) as client:
        head = stack[0].read_log(0, 1).head
        assert wait_until(lambda: client.list_deployment_states().log_position >= head)
        yield client
    thread.stop()


def test_predict_answers_and_says_what_served_it(gateway: GatewayClient) -> None:
    row = VAL[0]
    response = gateway.predict("web", {"text": row["text"]}, routing_key="user-1")
    assert set(response.outputs) == {"label"} and response.outputs["label"]
    assert response.program == "tickets" and response.version in {"1.0.0", "1.1.0"}
    assert len(response.prediction_id) == 32 and response.log_position > 0


def test_assignment_is_sticky_and_follows_the_weights(gateway: GatewayClient) -> None:
    text = {"text": VAL[1]["text"]}
    first = {f"user-{i}": gateway.predict("web", text, routing_key=f"user-{i}").version for i in range(200)}
    again = {key: gateway.predict("web", text, routing_key=key).version for key in list(first)[:50]}
    assert all(first[key] == version for key, version in again.items())
    counts = collections.Counter(first.values())
    assert set(counts) == {"1.0.0", "1.1.0"}
    assert 60 <= counts["1.0.0"] <= 140  # 50/50 split over 200 keys: far outside this is a broken hash


def test_route_changes_reach_the_gateway(
    stack: tuple[OptimizerClient, str, Path], gateway: GatewayClient
) -> None:
    opt = stack[0]
    changed = opt.set_routes("web", {"1.1.0": 1.0}, reason="all in")
    assert wait_until(lambda: gateway.get_deployment_state("web").log_position >= changed.log_position, 5)
    versions = {gateway.predict("web", {"text": "refund"}, routing_key=f"k{i}").version for i in range(30)}
    assert versions == {"1.1.0"}
    opt.set_routes("web", {"1.0.0": 0.5, "1.1.0": 0.5}, reason="back to 50/50")


def test_state_hash_equals_a_fresh_replay(
    stack: tuple[OptimizerClient, str, Path], gateway: GatewayClient
) -> None:
    _, _, log = stack
    store = open_store(str(log))
    try:
        state = gateway.get_deployment_state("web")
        events = store.read(0, 100_000)
        replayed = fold([e for e in events if e.position <= state.log_position])
        assert state_hash(replayed) == state.state_hash
        assert fold(events[: len(events) // 2]) != replayed  # the hash really depends on the events
    finally:
        store.close()


@pytest.mark.parametrize(
    "deployment,inputs,code,field",
    [
        ("ghost", {"text": "x"}, grpc.StatusCode.NOT_FOUND, "deployment"),
        ("", {"text": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "deployment"),
        ("we/b", {"text": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "deployment"),
        ("web", {}, grpc.StatusCode.INVALID_ARGUMENT, "inputs"),
        ("web", {"text": "x", "extra": "y"}, grpc.StatusCode.INVALID_ARGUMENT, "inputs"),
        ("web", {"text": "x" * 100_001}, grpc.StatusCode.INVALID_ARGUMENT, "inputs.text"),
        ("empty", {"text": "x"}, grpc.StatusCode.FAILED_PRECONDITION, "deployment"),
    ],
)
def test_bad_predictions_are_refused(
    gateway: GatewayClient, deployment: str, inputs: dict, code: grpc.StatusCode, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        gateway.predict(deployment, inputs)
    assert err.value.code() == code and field in err.value.details()
    assert gateway.predict("web", {"text": "still serving"}).version


def test_a_gateway_on_a_read_only_url_keeps_its_files_beside_the_log(
    stack: tuple[OptimizerClient, str, Path], tmp_path: Path
) -> None:
    """`sqlite:///...?mode=ro`: the prediction records and snapshots go beside the log file,
    not into files named after the URL's options."""
    _, _, log = stack
    copy = tmp_path / "copy.db"
    source = open_store(str(log))
    with open_store(str(copy)) as target:  # a log of its own, so this test's files are its own
        for event in source.read(0, 100_000):
            target.append(event.stream, [NewEvent(event.type, event.payload, event.event_id)], ANY)
    source.close()
    thread = ServerThread(lambda: start_gateway(GatewayConfig(log=f"sqlite:///{copy}?mode=ro")))
    try:
        with GatewayClient(thread.address) as gw:
            assert gw.predict("web", {"text": "refund please"}).version in {"1.0.0", "1.1.0"}
    finally:
        thread.stop()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "copy.db.predictions" in names, names
    assert not [n for n in names if "?" in n], names
