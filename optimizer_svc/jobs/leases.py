"""The lease keeper: one thread per JobManager that keeps its claims alive and takes jobs.

Each tick (every ``min(1 s, lease / 6)``, and at once when the log moves: a cancel request
from another replica reaches the owner without waiting for the tick) it

1. folds the log (``ledger.refresh``) and reads the log's clock (``store.clock_us``: the
   database server's on PostgreSQL, so the replicas' own clocks never matter);
2. for each job this replica runs: notices that the job is not ours any more (another
   replica claimed it, or ended it), acts on a cancel request, and appends
   ``JobLeaseRenewed`` when the job appended nothing for a third of its lease (through the
   fenced path, so a lost lease is noticed here too, even while the job waits on an LM);
3. stops, on its own, a job whose lease it could not renew for ``lease - lease / 6`` by
   the local monotonic clock (the log unreachable): before anyone else may take it, so two
   replicas never run one job for long (correctness does not depend on it: the fence does);
4. claims queued jobs and jobs whose owner's lease expired, while a slot is free (oldest
   first; a job accepted less than a second ago is its accepting replica's to claim), and
   ends those whose attempts are used up or that were asked to stop.

The keeper never decides alone: every claim is an append with an expected version
(optimizer_svc.jobs.claims), and two keepers racing for one job settle it in the log.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import structlog

from dspyops.errors import DspyopsError
from dspyops.eventlog import StoreUnavailable
from dspyops.state import JobSummary
from optimizer_svc.jobs import claims
from optimizer_svc.jobs.claims import LeaseLost

if TYPE_CHECKING:
    from optimizer_svc.jobs.manager import JobManager

_log = structlog.get_logger()

_WAIT_SLICE = 0.2  # seconds: how long stop() or a wake() may wait for the keeper
_MIN_TICK_GAP = 0.02  # seconds between ticks when the log moves fast (each tick reads the clock)
# A job just accepted is left to the replica that accepted it for this long: it claims the
# job at once when it has a slot (with the request's own job and context), so a keeper
# elsewhere racing it would only move the job away from where it was asked for.
SUBMITTER_GRACE_US = 1_000_000


def tick_seconds(lease_ms: int) -> float:
    return min(1.0, lease_ms / 6000)


class LeaseKeeper:
    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs
        self.tick_interval = tick_seconds(jobs.lease_ms)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one tick at a time (the thread's, a job thread's wake, start's)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def wake(self) -> None:
        """Tick now (a slot was freed)."""
        self._wake.set()

    def _loop(self) -> None:
        store = self.jobs.ledger.store
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception as exc:  # never let the keeper die: it is what keeps the leases
                _log.warning("lease_keeper_tick_failed", error=f"{type(exc).__name__}: {exc}")
            if self._stop.is_set():
                return
            if self._wake.is_set():
                self._wake.clear()
                continue
            try:
                head = store.head()
                # woken by any append (LISTEN/NOTIFY on PostgreSQL), else after a tick; in
                # slices, so that stop() is not kept waiting for a whole tick
                until = time.monotonic() + self.tick_interval
                while not self._stop.is_set() and not self._wake.is_set():
                    left = until - time.monotonic()
                    if left <= 0 or store.wait_for(
                        head + 1, min(left, _WAIT_SLICE), poll_interval=_WAIT_SLICE
                    ):
                        break
            except Exception:
                self._stop.wait(self.tick_interval)
            gap = _MIN_TICK_GAP - (time.monotonic() - started)
            if gap > 0:
                self._stop.wait(gap)

    def tick(self) -> list[str]:
        """One pass (see the module's docstring); the ids of the jobs it ended Interrupted."""
        with self._lock:
            return self._tick()

    def _tick(self) -> list[str]:
        jobs = self.jobs
        try:
            state = jobs.ledger.refresh()
            now_us = jobs.clock_us()
        except (DspyopsError, StoreUnavailable) as exc:
            self._self_fence(f"{type(exc).__name__}: {exc}")
            return []
        for handle in jobs.running():
            summary = state.jobs.get(handle.job_id)
            if summary is None:
                continue
            # Under the handle's lock, which the job thread holds from an append until it has
            # recorded the version: the refresh may already hold the job's newest append (the
            # keeper wakes on every append), and this handle must be read as of the same point.
            with handle._lock:
                if handle.fenced or handle.done or summary.stream_version < handle.stream_version:
                    continue  # ended, lost, or it appended since the refresh (which renewed its lease)
                theirs = summary.owner != jobs.owner or summary.fence != handle.fence
                written_after_us = summary.stream_version > handle.stream_version
            if theirs:
                if written_after_us:
                    owner = summary.owner or "nobody"
                    jobs.lose(handle, f"lease lost: the job is {summary.state}, owned by {owner}")
                continue
            if summary.cancel_requested:
                handle.cancel.cancel(summary.cancel_requested)
            last_us = summary.lease_until_us - summary.lease_ms * 1000
            if now_us - last_us >= summary.lease_ms * 1000 // 3:
                try:
                    jobs.renew(handle)
                except LeaseLost:
                    continue
                except (DspyopsError, StoreUnavailable) as exc:
                    _log.warning("job_lease_renewal_failed", job_id=handle.job_id, error=str(exc))
        self._self_fence("the log is unreachable")
        interrupted: list[str] = []
        owners_dead = jobs.exclusive
        candidates = [
            j
            for j in state.jobs.values()
            if claims.claimable(j, now_us, jobs.owner, owners_dead=owners_dead)
            and not _just_accepted(j, now_us)
        ]
        for summary in sorted(candidates, key=lambda j: j.accepted_position):
            decision = claims.decide(summary, now_us, jobs.owner, owners_dead=owners_dead)
            if decision.claims:
                if jobs.free_slots() > 0:
                    jobs.take(summary.job_id, owners_dead=owners_dead)
                continue
            # no slot needed: the job ends here (attempts used up, or asked to stop)
            ended = claims.end(
                jobs.ledger, lambda: now_us, summary.job_id, jobs.owner, owners_dead=owners_dead
            )
            if ended:
                jobs.forget_lm_calls(summary.job_id)  # nothing retries it: its cached calls go
            if ended == "interrupted":
                interrupted.append(summary.job_id)
        return interrupted

    def _self_fence(self, why: str) -> None:
        """Stop the jobs whose lease could not be renewed for nearly a lease (local clock;
        each job's own lease, which the replica that accepted it chose)."""
        jobs = self.jobs
        now = time.monotonic()
        for handle in jobs.running():
            lease_ms = handle.lease_ms or jobs.lease_ms
            limit = (lease_ms - lease_ms / 6) / 1000
            if not handle.fenced and now - handle.renewed_at > limit:
                jobs.lose(handle, f"lease lost: no renewal for {now - handle.renewed_at:.1f} s ({why})")


def _just_accepted(job: JobSummary, now_us: int) -> bool:
    return (
        job.state == "queued" and job.stream_version == 1 and now_us - job.accepted_at_us < SUBMITTER_GRACE_US
    )
