"""A job survives the death of the optimizer running it: two real optimizer processes on one
PostgreSQL log; the job runs on A, held mid-run by a metric that waits on a file
(tests/support/held_metric.py), and A is killed with SIGKILL. B's lease keeper sees A's
lease expire (on the database server's clock), takes the job over with JobRetried and
JobClaimed in one append, and finishes it; a client watching through B sees all of it. The
chain verifies, nothing A acknowledged before the kill is missing, and B's attempt replays
from the job's LM cache the calls A's attempt paid for."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dspyops.client import OptimizerClient
from dspyops.eventlog import open_store
from dspyops.events import decode
from dspyops.launch import ServiceProcess
from dspyops.lmcache import open_lm_cache
from dspyops.names import job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from tests.support.collector import Collector
from tests.support.harness import ticket_rows, wait_until
from tests.support.held_metric import HOLD_ENV, NAME

pytestmark = pytest.mark.slow
ROWS = ticket_rows()
WAIT = 120.0  # bounds, not expectations: two processes and a database on a shared machine
LEASE = "2"  # seconds: the takeover comes this long after A's last event


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    hold = tmp_path / "hold"
    yield dict(os.environ, DSPYOPS_METRIC_MODULES="tests.support.held_metric", **{HOLD_ENV: str(hold)})
    hold.unlink(missing_ok=True)


def replica(name: str, url: str, tmp_path: Path, env: dict[str, str]) -> ServiceProcess:
    args = [
        "optimizer", "--log", url, "--data-dir", str(tmp_path / "data"),
        "--job-lease-seconds", LEASE, "--job-max-attempts", "2",
    ]  # fmt: skip
    return ServiceProcess(name, args, tmp_path, env)


def test_a_job_whose_optimizer_is_killed_is_finished_by_the_other(
    tmp_path: Path, postgres_url: str, env: dict[str, str]
) -> None:
    hold = Path(env[HOLD_ENV])
    a = replica("optimizer-a", postgres_url, tmp_path, env)
    b = replica("optimizer-b", postgres_url, tmp_path, env)
    acknowledged: list[tuple[int, str]] = []  # (job-stream version, kind) A streamed to its client
    try:
        with OptimizerClient(a.address) as opt_a, OptimizerClient(b.address) as opt_b:
            first = list(
                opt_a.start_optimization(
                    "tickets",
                    "text -> label",
                    trainset=ROWS[:20],
                    optimizer="LabeledFewShot",
                    params={"k": 4},
                )
            )
            assert first[-1].completed.version == "1.0.0"
            hold.touch()  # the next job's metric waits: it stays in its baseline evaluation
            stream = opt_a.start_optimization(
                "tickets",
                "text -> label",
                trainset=ROWS[:20],
                valset=ROWS[20:30],
                optimizer="LabeledFewShot",
                params={"k": 5},  # another artifact than 1.0.0's: a version of its own
                metric=NAME,
            )
            for event in stream:
                if event.WhichOneof("kind") != "progress":
                    acknowledged.append((event.stream_version, str(event.WhichOneof("kind"))))
                if event.WhichOneof("kind") == "started":
                    break
            job_id = event.job_id
            stream.cancel()  # type: ignore[attr-defined]  # the call's iterator; the job goes on on A
            watch = Collector(opt_b.watch_job(job_id))  # through B, which does not run it
            assert wait_until(lambda: "started" in watch.kinds(), WAIT), watch.kinds()
            assert opt_b.get_job(job_id).owner.split("/")[1] == str(a.process.pid)
            # what A paid for reaches the LM cache in batches, at most 0.5 s after each call
            # (dspyops/lmcache/attempt.py): a kill before that would lose it, and the retry
            # would pay again; this test is about the retry replaying what was kept
            cache = open_lm_cache(postgres_url)
            try:
                assert wait_until(lambda: cache.count(job_id) > 0, WAIT)
            finally:
                cache.close()

            a.process.kill()  # SIGKILL: no release, no last event
            a.process.wait(WAIT)
            hold.unlink()  # the next attempt is not held
            watch.thread.join(WAIT)
            assert not watch.thread.is_alive() and watch.error is None, (watch.kinds(), watch.error)
            seen = watch.kinds()  # A's attempt, the takeover, B's attempt: one stream through B
            assert seen[seen.index("retried") + 1] == "claimed" and seen[-1] == "completed", seen
            assert seen.count("claimed") == 2 and seen.count("started") == 2, seen
            job = opt_b.get_job(job_id)
            assert (job.state, job.attempt, job.max_attempts) == (opb.SUCCEEDED, 2, 2)
            assert job.owner == ""  # ended: nobody holds it
            assert [v.version for v in opt_b.list_versions("tickets").versions] == ["1.0.0", job.version]
    finally:
        hold.unlink(missing_ok=True)
        if a.process.poll() is None:
            a.stop()
        assert b.stop() == 0

    store = open_store(postgres_url, create=False)
    try:
        records = store.read_stream(job_stream(job_id))
        payloads = [decode(r) for r in records]
        kinds = [type(p).__name__ for p in payloads]
        # A's attempt, then B's: the takeover is on the record, in one append before B's events
        retried_at = kinds.index("JobRetried")
        assert kinds[retried_at + 1] == "JobClaimed" and kinds[-1] == "JobCompleted"
        retried, claimed = payloads[retried_at], payloads[retried_at + 1]
        assert isinstance(retried, pb.JobRetried) and isinstance(claimed, pb.JobClaimed)
        first_claim = records[kinds.index("JobClaimed")]
        assert retried.attempt == 2 and retried.lost_fence == first_claim.version
        assert retried.lost_owner.split("/")[1] == str(a.process.pid)
        assert claimed.owner.split("/")[1] == str(b.process.pid) and claimed.attempt == 2
        b_fence = records[retried_at + 1].version
        assert all(getattr(p, "fence", b_fence) == b_fence for p in payloads[retried_at + 2 :])
        assert records[retried_at].actor == "system"
        # the retry replayed from the job's LM cache what A's attempt had paid for
        completed = payloads[-1]
        assert isinstance(completed, pb.JobCompleted) and completed.usage.replayed_lm_calls > 0
        print(
            f"attempt 2 replayed {completed.usage.replayed_lm_calls} calls, paid {completed.usage.lm_calls}"
        )
        # nothing A acknowledged is missing: each event A streamed is in the log, same version
        logged = {(r.version, type(p).__name__) for r, p in zip(records, payloads, strict=True)}
        names = {"accepted": "JobAccepted", "claimed": "JobClaimed", "started": "JobStarted"}
        assert {(v, names[k]) for v, k in acknowledged} <= logged, acknowledged
        assert len(acknowledged) == 3
        verified = store.verify()
        assert verified.ok and verified.checked == store.head()
    finally:
        store.close()
    cli = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "log", "verify", "--log", postgres_url],
        capture_output=True, text=True, timeout=WAIT, env=env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "log ok" in cli.stdout
