"""Code shared by the contract tests and the processes they spawn.

Lives in its own importable module because ``multiprocessing`` with "spawn" re-imports the
target function by name in a fresh interpreter. Payloads are plain ``writer:batch:index``
tags so the checks can tell exactly which batch each stored event came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Protocol

from dspyops.eventlog import EventStore, NewEvent, StoredEvent, WrongExpectedVersion, open_store

EVENT_TYPE = "dspyops.test.Tagged"


def tagged_batch(writer: str, batch: int, size: int) -> list[NewEvent]:
    return [NewEvent(EVENT_TYPE, f"{writer}:{batch}:{i}".encode()) for i in range(size)]


class Gate(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


def write_batches(
    store: EventStore,
    writer: str,
    streams: Sequence[str],
    batches: int,
    batch_size: int,
    gate: Gate | None = None,
) -> int:
    """Append ``batches`` tagged batches the way a command handler does: read the stream's
    version, append expecting it, re-read and retry on a conflict. Returns the conflict count.

    ``gate`` (a barrier shared by all writers, across processes) makes them start together:
    a spawned process needs far longer to start than a thread needs to finish.
    Anything other than WrongExpectedVersion propagates and fails the test.
    """
    if gate is not None:
        gate.wait(60)
    conflicts = 0
    for b in range(batches):
        stream = streams[b % len(streams)]
        events = tagged_batch(writer, b, batch_size)
        while True:
            version = store.stream_version(stream)
            try:
                result = store.append(stream, events, version)
            except WrongExpectedVersion as exc:
                # Versions only grow, so a conflict must report a newer actual version.
                assert exc.stream == stream and exc.expected == version and exc.actual > version, exc
                conflicts += 1
                continue
            # The failed attempts wrote nothing, so this cannot be a deduplicated retry.
            assert not result.deduplicated, result
            assert result.last_position - result.first_position == batch_size - 1
            break
    return conflicts


def process_writer(
    url: str, writer: str, streams: list[str], batches: int, batch_size: int, gate: Gate | None = None
) -> int:
    """Entry point for a spawned process: its own store on the same file."""
    store = open_store(url)
    try:
        return write_batches(store, writer, streams, batches, batch_size, gate)
    finally:
        store.close()


def ack_forever(url: str, conn: Connection) -> None:
    """Append single events forever, sending each acknowledged position to the parent (which
    kills this process with SIGKILL at some point)."""
    store = open_store(url)
    n = 0
    while True:
        result = store.append("crash-stream", tagged_batch("crash", n, 1), None)
        conn.send(result.last_position)
        n += 1


def check_log(events: Sequence[StoredEvent], expected: dict[tuple[str, int], int]) -> None:
    """Assert the log holds exactly the expected batches, gapless and unmixed.

    ``expected`` maps (writer, batch) -> batch size.
    """
    positions = [e.position for e in events]
    assert positions == list(range(1, len(events) + 1)), "positions are not gapless from 1"
    assert len(events) == sum(expected.values()), f"{len(events)} events, expected {sum(expected.values())}"

    versions: dict[str, int] = defaultdict(int)
    by_batch: dict[tuple[str, int], list[tuple[int, int, str]]] = defaultdict(list)
    seen: set[bytes] = set()
    for e in events:
        versions[e.stream] += 1
        assert e.version == versions[e.stream], f"stream {e.stream} version gap at {e.position}"
        assert e.payload not in seen, f"duplicate event {e.payload!r}"
        seen.add(e.payload)
        writer, batch, index = e.payload.decode().split(":")
        by_batch[(writer, int(batch))].append((e.position, int(index), e.stream))

    assert set(by_batch) == set(expected), "lost or unexpected batches"
    for key, rows in by_batch.items():
        assert len(rows) == expected[key], f"batch {key} is incomplete"
        first = rows[0][0]
        # Contiguous and in order: no other writer's event landed inside the batch.
        assert [(p, i) for p, i, _ in rows] == [(first + i, i) for i in range(len(rows))], key
        assert len({s for _, _, s in rows}) == 1, f"batch {key} spans streams"
