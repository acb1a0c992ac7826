"""Concurrency stress on the SQLite store: 16 writers (8 threads, 8 spawned processes),
1,000 appends each with expected versions, most of them sharing streams.

What must hold afterwards: positions gapless from 1, every batch contiguous and in one
stream (no interleaving, the eventsourcing recorder check), each stream's versions 1..n,
no duplicate event ids, the hash chain intact, and every lost race reported as
WrongExpectedVersion (write_batches re-raises anything else, from a thread or a child).
Writers on a stream of their own never conflict; writers that share streams do.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from dspyops.eventlog import EventStore, open_store

from .workers import check_log, process_writer, write_batches

SPAWN = multiprocessing.get_context("spawn")
THREADS = 8
PROCESSES = 8
APPENDS = 1000  # per writer
BATCH = 2  # events per append, so the non-interleaving check has something to check


def streams_of(writer: int) -> list[str]:
    """Writers 0-11 share streams in three groups of four (two threads and two processes
    each); writers 12-15 (two threads, two processes) each own one stream."""
    if writer >= 12:
        return [f"program-own-{writer}"]
    group = writer % 3  # thread i and process i land in the same group
    return [f"deployment-shared-{group}", f"job-shared-{group}"]


def writer_index(kind: str, i: int) -> int:
    """Threads are writers 0..7, processes 8..15; interleave them so every group mixes both."""
    return 2 * i if kind == "t" else 2 * i + 1


@pytest.mark.slow
def test_sixteen_writers_threads_and_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stress.db'}"
    stores: list[EventStore] = [open_store(url), open_store(url)]  # two instances in this process
    conflicts: dict[int, int] = {}
    errors: list[BaseException] = []
    started = time.monotonic()
    with SPAWN.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=SPAWN) as pool:
        gate = manager.Barrier(THREADS + PROCESSES)
        futures = {
            writer_index("p", i): pool.submit(
                process_writer,
                url,
                f"w{writer_index('p', i)}",
                streams_of(writer_index("p", i)),
                APPENDS,
                BATCH,
                gate,
            )
            for i in range(PROCESSES)
        }

        def thread_writer(index: int) -> None:
            try:
                conflicts[index] = write_batches(
                    stores[index % 2], f"w{index}", streams_of(index), APPENDS, BATCH, gate
                )
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=thread_writer, args=(writer_index("t", i),)) for i in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        # result() re-raises anything but WrongExpectedVersion from a child process.
        for index, future in futures.items():
            conflicts[index] = future.result(timeout=600)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    assert sorted(conflicts) == list(range(THREADS + PROCESSES))

    store = stores[0]
    events = store.read(limit=APPENDS * BATCH * 16 + 10)
    assert store.head() == len(events) == APPENDS * BATCH * 16
    # gapless positions, per-stream versions 1..n, contiguous single-stream batches, no lost
    # or duplicated batch
    check_log(events, {(f"w{w}", b): BATCH for w in range(16) for b in range(APPENDS)})
    ids = Counter(e.event_id for e in events)
    assert len(ids) == len(events), f"duplicate event ids: {[i for i, n in ids.items() if n > 1][:5]}"
    for stream, count in Counter(e.stream for e in events).items():
        assert [e.version for e in store.read_stream(stream)] == list(range(1, count + 1)), stream
        assert store.stream_version(stream) == count
    verified = stores[1].verify()
    assert verified.ok and verified.checked == len(events), verified

    shared = sum(n for w, n in conflicts.items() if w < 12)
    own = {w: n for w, n in conflicts.items() if w >= 12}
    assert shared > 0, "writers sharing streams never conflicted: the race was not exercised"
    assert own == {12: 0, 13: 0, 14: 0, 15: 0}, own
    print(
        f"\n16 writers x {APPENDS} appends of {BATCH}: {len(events)} events, "
        f"{shared} conflicts on shared streams (per writer {dict(sorted(conflicts.items()))}), "
        f"{elapsed:.1f}s",
        file=sys.stderr,
    )
    for s in stores:
        s.close()
