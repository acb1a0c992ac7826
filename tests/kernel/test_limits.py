"""Every field of every request has a size limit, every event a payload limit, and the log
stays readable over gRPC whatever it already holds.

Before: a 30 MB SetRoutes `reason`, a 4 MB `spec.instructions` and a 7 MB ImportProgram
`metadata` were all appended, after which ReadLog (and `dspyops log`) failed with
RESOURCE_EXHAUSTED: a reply carries each payload twice and outgrew the message limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dspy
import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from dspyops.client import OptimizerClient
from dspyops.errors import InvalidArgument
from dspyops.eventlog import ANY, open_store
from dspyops.events import new_event
from dspyops.ledger import checked_append
from dspyops.limits import (
    BY_NAME,
    LIMITS,
    MAX_EVENT_PAYLOAD_BYTES,
    MAX_MESSAGE_BYTES,
    check_request,
    limit_for,
    limits_table,
    request_fields,
    service_requests,
)
from dspyops.proto import events_pb2 as pb
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread

MB = 1_000_000
SIG = "text -> label"

# ---------------------------------------------------------------------- the table


def test_every_limit_in_the_table_names_a_request_field() -> None:
    fields = request_fields(service_requests())
    assert not set(LIMITS) - set(fields), "LIMITS names fields no request has"
    names = {f.name for f in fields.values()}
    assert set(BY_NAME) <= names
    for name, limit in LIMITS.items():
        field = fields[name]
        if limit.entries is not None or limit.key_chars is not None:
            assert field.is_repeated, f"{name}: an entry limit on a field that is not repeated"


def test_the_readme_table_lists_every_override() -> None:
    table = limits_table()
    for name in LIMITS:
        message, field = name.rsplit(".", 1)
        assert f"`{field}` of" in table and message.removeprefix("dspyops.v1.") in table
    assert f"{MAX_EVENT_PAYLOAD_BYTES:,} bytes" in table


@dataclass(frozen=True)
class Path_:
    """How to reach a field from a request: message fields to descend, then the field."""

    steps: tuple[FieldDescriptor, ...]
    field: FieldDescriptor

    def text(self, leaf: str = "") -> str:
        parts = []
        for step in self.steps:
            if _is_map(step):
                parts.append(f"{step.name}.k")
            elif step.is_repeated:
                parts.append(f"{step.name}[0]")
            else:
                parts.append(step.name)
        return ".".join([*parts, self.field.name]) + leaf


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == field.TYPE_MESSAGE and field.is_repeated and field.message_type.GetOptions().map_entry
    )


def field_paths(root: Descriptor) -> Iterator[Path_]:
    """Every string, bytes, repeated and map field under `root`, each message type once per path."""

    def visit(
        descriptor: Descriptor, steps: tuple[FieldDescriptor, ...], seen: frozenset[str]
    ) -> Iterator[Path_]:
        for field in descriptor.fields:
            if field.is_repeated or field.type in (field.TYPE_STRING, field.TYPE_BYTES):
                yield Path_(steps, field)
            if field.type != field.TYPE_MESSAGE:
                continue
            target = field.message_type
            if _is_map(field):
                value = target.fields_by_name["value"]
                if value.type != value.TYPE_MESSAGE:
                    continue
                target = value.message_type
            if target.full_name not in seen:
                yield from visit(target, (*steps, field), seen | {target.full_name})

    yield from visit(root, (), frozenset({root.full_name}))


def reach(request: Message, path: Path_) -> Message:
    message = request
    for step in path.steps:
        if _is_map(step):
            message = getattr(message, step.name)["k"]
        elif step.is_repeated:
            message = getattr(message, step.name).add()
        else:
            message = getattr(message, step.name)
    return message


def over(field: FieldDescriptor, size: int) -> str | bytes:
    return b"x" * size if field.type == field.TYPE_BYTES else "x" * size


CASES = [(root, path) for root in service_requests() for path in field_paths(root)]


@pytest.mark.parametrize(("root", "path"), CASES, ids=[f"{root.name}.{path.text()}" for root, path in CASES])
def test_every_request_field_is_refused_over_its_limit_and_taken_at_it(root: Descriptor, path: Path_) -> None:
    """Walks both services' request descriptors: a field added to the contract is covered."""
    cls = root._concrete_class
    field = path.field
    limit = limit_for(field)

    def refused(request: Message, where: str, words: str) -> None:
        with pytest.raises(InvalidArgument) as info:
            check_request(request)
        assert info.value.field == where and words in info.value.problem, str(info.value)

    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        request = cls()
        container = getattr(reach(request, path), field.name)
        for i in range(limit.entries + 1):  # type: ignore[operator]
            if value_field.type == value_field.TYPE_MESSAGE:
                container[f"k{i}"]
            else:
                container[f"k{i}"] = over(value_field, 0)  # type: ignore[arg-type]
        refused(request, path.text(), f"at most {limit.entries:,} entries")
        request = cls()
        container = getattr(reach(request, path), field.name)
        if value_field.type in (value_field.TYPE_STRING, value_field.TYPE_BYTES):
            container["k"] = over(value_field, limit.chars)  # type: ignore[arg-type]
            check_request(request)
            container["k"] = over(value_field, limit.chars + 1)  # type: ignore[operator,arg-type]
            refused(request, path.text(".k"), f"at most {limit.chars:,}")
        request = cls()
        container = getattr(reach(request, path), field.name)
        long_key = "k" * (limit.key_chars + 1)  # type: ignore[operator]
        if value_field.type == value_field.TYPE_MESSAGE:
            container[long_key]
        else:
            container[long_key] = over(value_field, 0)  # type: ignore[arg-type]
        refused(request, path.text(), f"keys of at most {limit.key_chars:,} characters")
    elif field.is_repeated:
        request = cls()
        container = getattr(reach(request, path), field.name)
        for _ in range(limit.entries + 1):  # type: ignore[operator]
            if field.type == field.TYPE_MESSAGE:
                container.add()
            elif field.type in (field.TYPE_STRING, field.TYPE_BYTES):
                container.append(over(field, 0))
            else:
                container.append(0)
        refused(request, path.text(), f"at most {limit.entries:,} entries")
        if field.type in (field.TYPE_STRING, field.TYPE_BYTES):
            request = cls()
            getattr(reach(request, path), field.name).append(over(field, limit.chars + 1))  # type: ignore[operator]
            refused(request, path.text("[0]"), f"at most {limit.chars:,}")
    else:
        request = cls()
        target = reach(request, path)
        setattr(target, field.name, over(field, limit.chars))  # type: ignore[arg-type]
        check_request(request)
        setattr(target, field.name, over(field, limit.chars + 1))  # type: ignore[operator]
        refused(request, path.text(), f"at most {limit.chars:,}")


# ---------------------------------------------------------------------- over gRPC


def saved_state(metadata: dict | None = None) -> bytes:
    state = dspy.Predict(SIG).dump_state()
    if metadata is not None:
        state["metadata"] = metadata
    return json.dumps(state).encode()


@pytest.fixture(scope="module")
def optimizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OptimizerClient]:
    tmp = tmp_path_factory.mktemp("limits")
    server = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    with OptimizerClient(server.address, timeout=120) as client:
        version = client.import_program("tickets", SIG, saved_state()).version
        client.create_deployment("web", "tickets")
        client.set_routes("web", {version: 1.0})
        yield client
    server.stop()


def refused_over_grpc(client: OptimizerClient, call: object, field: str, limit: str) -> str:
    head = client.read_log(limit=1).head
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    details = info.value.details()
    assert details.startswith(f"{field}: ") and limit in details, details
    assert len(details) < 300, "the message echoes the value"
    assert client.read_log(limit=1).head == head, "something was appended"
    return details


def test_a_30_mb_routes_reason_is_refused(optimizer: OptimizerClient) -> None:
    version = optimizer.list_versions("tickets").versions[0].version
    refused_over_grpc(
        optimizer,
        lambda: optimizer.set_routes("web", {version: 1.0}, reason="r" * (30 * MB)),
        "reason",
        "at most 2,000 characters",
    )


def test_4_mb_instructions_are_refused(optimizer: OptimizerClient) -> None:
    refused_over_grpc(
        optimizer,
        lambda: optimizer.import_program("tickets", SIG, saved_state(), instructions="i" * (4 * MB)),
        "spec.instructions",
        "at most 20,000 characters",
    )
    refused_over_grpc(
        optimizer,
        lambda: list(
            optimizer.start_optimization(
                "tickets",
                SIG,
                instructions="i" * (4 * MB),
                optimizer="LabeledFewShot",
                trainset=[{"text": "a", "label": "b"}],
            )
        ),
        "spec.instructions",
        "20,000",
    )


def test_a_7_mb_import_metadata_is_refused(optimizer: OptimizerClient) -> None:
    big = {"dependency_versions": {"dspy": dspy.__version__}, "notes": "m" * (7 * MB)}
    refused_over_grpc(
        optimizer,
        lambda: optimizer.import_program("tickets", SIG, saved_state(big)),
        "state_json",
        "at most 4,194,304 bytes",
    )
    # under the state's limit, the metadata object has its own
    mid = {"dependency_versions": {"dspy": dspy.__version__}, "notes": "m" * MB}
    refused_over_grpc(
        optimizer,
        lambda: optimizer.import_program("tickets", SIG, saved_state(mid)),
        "state_json.metadata",
        "at most 65,536 bytes",
    )


def test_a_20000_character_name_is_refused_briefly(optimizer: OptimizerClient) -> None:
    refused_over_grpc(
        optimizer,
        lambda: optimizer.create_deployment("w" * 20_000, "tickets"),
        "deployment",
        "at most 1,000 characters",
    )
    refused_over_grpc(
        optimizer, lambda: optimizer.create_deployment("W" * 900, "tickets"), "deployment", "900"
    )


def test_an_event_over_the_payload_limit_is_never_appended(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "log.db"))
    try:
        with pytest.raises(InvalidArgument) as info:
            checked_append(store, "deployment-web", [pb.RoutesSet(reason="x" * MAX_EVENT_PAYLOAD_BYTES)], ANY)
        assert "RoutesSet" in str(info.value) and f"{MAX_EVENT_PAYLOAD_BYTES:,} bytes" in str(info.value)
        assert store.head() == 0
        checked_append(store, "deployment-web", [pb.RoutesSet(reason="x" * 1000)], ANY)
        assert store.head() == 1
    finally:
        store.close()


# ---------------------------------------------------------------------- a log that holds big events


BIG = {2: 30 * MB, 3: 12 * MB, 4: 12 * MB}  # position -> payload size (as an old server wrote them)


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OptimizerClient]:
    tmp = tmp_path_factory.mktemp("big-log")
    store = open_store(str(tmp / "log.db"))
    try:  # written with the store API, past every limit of today's servers
        store.append(
            "deployment-web", [new_event(pb.DeploymentCreated(deployment="web", program="tickets"))], 0
        )
        store.append("deployment-web", [new_event(pb.RoutesSet(deployment="web", reason="r" * BIG[2]))], 1)
        store.append("job-old", [new_event(pb.JobProgress(message="p" * BIG[3]))], 0)
        store.append("job-old", [new_event(pb.JobProgress(message="q" * BIG[4]))], 1)
        store.append("job-old", [new_event(pb.JobProgress(message="small"))], 2)
        expected = {e.position: e.payload for e in store.read(limit=10)}
    finally:
        store.close()
    server = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    with OptimizerClient(server.address, timeout=120) as client:
        client.expected = expected  # type: ignore[attr-defined]
        yield client
    server.stop()


def test_read_log_pages_a_log_of_big_events_within_the_message_limit(big_log: OptimizerClient) -> None:
    expected: dict[int, bytes] = big_log.expected  # type: ignore[attr-defined]
    after, pages = 0, []
    while True:
        response = big_log.read_log(after, limit=100)
        assert response.ByteSize() <= MAX_MESSAGE_BYTES
        if not response.events:
            break
        pages.append([e.position for e in response.events])
        for event in response.events:
            assert event.raw_payload == expected[event.position]
        after = response.events[-1].position
    assert response.head == 5
    assert pages == [[1], [2], [3], [4], [5]]  # each big one alone: a reply never outgrows a message
    replies = {e.position: e for p in pages for e in big_log.read_log(p[0] - 1, limit=1).events}
    assert not replies[2].HasField("payload")  # 60 MB decoded + raw: only the raw bytes travel
    assert replies[3].payload.job_progress.message == "p" * BIG[3]  # 24 MB with both: fits


def test_subscribe_log_streams_a_log_of_big_events(big_log: OptimizerClient) -> None:
    expected: dict[int, bytes] = big_log.expected  # type: ignore[attr-defined]
    stream = big_log.subscribe_log()
    got = {}
    for event in stream:
        assert event.ByteSize() <= MAX_MESSAGE_BYTES
        got[event.position] = event.raw_payload
        if event.position == 5:
            break
    stream.cancel()
    assert got == expected
