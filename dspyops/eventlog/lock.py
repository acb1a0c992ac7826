"""One writer per log: the lease a store hands to the process that owns the log.

The optimizer takes the lease for its lifetime, so a second optimizer on the same log
cannot start (it would see the first one's running jobs as orphans and write JobInterrupted
for them, and both would append job events). Each backend takes its own kind of lock: the
SQLite store an OS file lock beside the log (``FileWriterLock``); the PostgreSQL store
none that excludes (eventlog/postgres/lease.py: replicas sharing the log are its point,
and what stays exclusive is each job, for a job lease to hold). Gateways take none: they
append only their own deployment decisions, with expected versions, and several share one log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from abc import ABC, abstractmethod
from typing import Final

_PID_BYTES: Final = 32


class WriterLocked(Exception):
    """Another process holds the log's writer lease."""

    def __init__(self, log: str, holder_pid: int | None) -> None:
        super().__init__(log, holder_pid)
        self.log = log
        self.holder_pid = holder_pid

    def __str__(self) -> str:
        holder = f"process {self.holder_pid}" if self.holder_pid else "another process (pid not recorded)"
        return f"the log {self.log} is held by {holder}: one optimizer per log (stop it first)"


class WriterLease(ABC):
    """Held until ``release()`` (or the process ends); a context manager too."""

    #: whether holding it excludes every other writer: then whatever an earlier process
    #: left running (a job it owned) is known to be dead (optimizer_svc.jobs.leases)
    exclusive: bool = True

    @abstractmethod
    def release(self) -> None:
        """Give the lease up. Idempotent."""

    def __enter__(self) -> WriterLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FileWriterLock(WriterLease):
    """``flock(LOCK_EX | LOCK_NB)`` on ``<log>.lock``, with the holder's pid written into it.

    The kernel drops the lock when the holder exits, even on kill -9, so a crash leaves
    nothing to clean up; the file itself stays (an unlocked file means no holder). flock
    locks belong to the open file, so a second lease in the same process is refused too.
    """

    def __init__(self, lock_path: str, log: str) -> None:
        self.path = lock_path
        self.log = log
        self._fd: int | None = None
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise WriterLocked(log, holder) from None
            except BaseException:
                os.close(fd)
                raise
            # The file may have been unlinked (or replaced) by its last holder between our
            # open and our lock: then we hold a lock nobody else will ever look at. Retry.
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no stale pid for the next reader
            os.close(fd)  # closing the only descriptor drops the flock


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, _PID_BYTES, 0).decode("ascii").strip()) or None
    return None
