"""The writer lease of a PostgreSQL log: it excludes nobody.

On SQLite one optimizer owns the log (``lock.FileWriterLock``). On PostgreSQL several
optimizer replicas on one log are the point, and each command is already safe among them
(optimistic concurrency per stream). What must stay exclusive is the running of each
*job*, not the log: each job is claimed on its own stream, with a lease and a fencing
token on the job's events (optimizer_svc.jobs.claims), so a replica that starts leaves the
other replicas' running jobs alone until their leases expire.
"""

from __future__ import annotations

from dspyops.eventlog.lock import WriterLease


class SharedWriterLease(WriterLease):
    """Granted to every process that asks; ``release()`` gives nothing up."""

    exclusive = False  # other replicas may be alive: their jobs' leases say when they are not

    def __init__(self, log: str) -> None:
        self.log = log
        self.released = False

    def release(self) -> None:
        self.released = True
