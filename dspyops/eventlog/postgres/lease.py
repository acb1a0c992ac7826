"""The writer lease of a PostgreSQL log: it excludes nobody.

On SQLite one optimizer owns the log (``lock.FileWriterLock``): a second one would find
the first one's running jobs orphaned and interrupt them. On PostgreSQL several optimizer
replicas on one log are the point, and each command is already safe among them (optimistic
concurrency per stream). What must stay exclusive is the running of each *job*, not the
log: that is the job-lease layer's (a lease row or an advisory lock per job, with a
fencing token on the job's events), which takes over from this lease. Until it exists, a
replica that starts finds the other replicas' running jobs as a restarted single writer
would, so run one optimizer per log that runs jobs.
"""

from __future__ import annotations

from dspyops.eventlog.lock import WriterLease


class SharedWriterLease(WriterLease):
    """Granted to every process that asks; ``release()`` gives nothing up."""

    def __init__(self, log: str) -> None:
        self.log = log
        self.released = False

    def release(self) -> None:
        self.released = True
