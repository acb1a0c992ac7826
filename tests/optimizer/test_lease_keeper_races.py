"""The lease keeper deciding while a job's append is half done (CI flakes of test_gates_budgets
and test_job_claims).

The keeper wakes on every append, so it often reads a ledger state that already has the job's
newest append while the job thread, under the handle's lock, has not yet recorded that
append's version. Deciding on that mix, it took the job for lost (the job's stream then sent
JobCompleted twice: the owner's, and a follower's read from the log) or renewed the lease
of a job that had just completed (JobLeaseRenewed after JobCompleted in the log).

Real optimizer, keeper, ledger and SQLite log; the test only chooses when the keeper ticks:
from a second thread, right after the JobCompleted append commits and before the job thread
has returned from it (the window the flakes fell into by chance).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from dspyops.client import OptimizerClient
from dspyops.eventlog import AppendResult
from dspyops.proto import events_pb2 as pb
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[OptimizerClient, Any]]:
    # a short lease: a renewal is due 100 ms after the job's last append
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "d", job_lease_seconds=0.3)
    thread = ServerThread(lambda: start(config))
    try:
        with OptimizerClient(thread.address) as client:
            yield client, thread.running.jobs
    finally:
        thread.stop()


def test_a_keeper_tick_inside_the_completing_append_neither_loses_nor_renews_the_job(
    stack: tuple[OptimizerClient, Any],
) -> None:
    opt, jobs = stack
    ledger = jobs.ledger
    append = ledger.append
    ticks: list[threading.Thread] = []

    def append_then_tick(
        stream: str, payloads: Sequence[Message], expected: int | None, **kw: Any
    ) -> AppendResult:
        result = append(stream, payloads, expected, **kw)
        if any(isinstance(p, pb.JobCompleted) for p in payloads):
            # the keeper's tick in the window: committed and folded, the handle not told yet;
            # let it run to its end or until it waits for the handle (what a fixed keeper does)
            tick = threading.Thread(target=jobs.keeper.tick, name="test-tick")
            tick.start()
            tick.join(1.0)
            ticks.append(tick)
        return result

    ledger.append = append_then_tick
    try:
        events = list(
            opt.start_optimization(
                "tickets", "text -> label", trainset=ROWS[:20], optimizer="LabeledFewShot", params={"k": 2}
            )
        )
    finally:
        ledger.append = append
        for tick in ticks:
            tick.join(5.0)
    assert ticks, "the job completed without the tick in its append"
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds.count("completed") == 1 and kinds[-1] == "completed", kinds
    job_id = events[0].job_id
    types = [e.type.rsplit(".", 1)[-1] for e in opt.read_log(0, 1000, f"job-{job_id}").events]
    assert types[-1] == "JobCompleted", types  # nothing renewed after the end
