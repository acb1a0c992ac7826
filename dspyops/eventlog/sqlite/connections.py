"""This process's connections to one SQLite log file: one per thread, closed safely from any
thread, dropped after a fork, and never to a file other than the one first opened.

Why it notices a vanished log: SQLite keeps writing to a file that was unlinked or renamed
over, and a new connection to the path would silently create an empty log. The pool
remembers the device and inode of the file it opened and refuses (LogReplaced) an append,
or a new connection, once the path names another file or none; after the first open it
never creates the file again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from typing import Final
from urllib.parse import quote

from dspyops.eventlog.store import LogReplaced, StoreUnavailable

# Primary result codes that mean "the storage cannot serve this now", as opposed to a bug in
# our SQL or a corrupt file: busy past the timeout, out of memory, read-only, I/O error,
# disk full, cannot open, WAL lock protocol failure.
UNAVAILABLE_CODES: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


class Connections:
    """One connection per thread to the log at ``path`` (absolute).

    ``create``: the first connection may create the file (after ``opened()`` none may).
    ``busy_timeout`` bounds how long a statement waits for another process's write lock.
    ``write_lock`` queues this process's appends (see backend).
    """

    def __init__(self, path: str, *, read_only: bool, busy_timeout: float, create: bool) -> None:
        self.path = path
        self.read_only = read_only
        self.closed = False
        self._busy_timeout = busy_timeout
        self._may_create = create and not read_only
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._start_afresh()

    def _start_afresh(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._handles_lock = threading.Lock()
        self._handles: list[_Handle] = []
        # In-process appends queue on this lock instead of spinning in SQLite's busy handler;
        # BEGIN IMMEDIATE still serializes them against other processes.
        self.write_lock = threading.Lock()

    def opened(self) -> None:
        """The file is open: from now on a missing file is a vanished log, never a new one."""
        self._identity = self._stat_identity()
        self._may_create = False

    # -- the file -------------------------------------------------------------------------------

    def _stat_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check_file(self) -> None:
        """Raise LogReplaced if the path no longer names the file first opened (one stat
        call: cheap enough for every append and every tail wake-up)."""
        now = self._stat_identity()
        if now == self._identity:
            return
        if now is None:
            raise LogReplaced(
                f"the log {self.path} was removed while in use: refusing to write into the deleted "
                "file (restore it, or restart with --create for a new log)"
            )
        raise LogReplaced(
            f"the log {self.path} was replaced by another file while in use (device/inode changed): "
            "refusing to write; restart the service to open the new file"
        )

    # -- connections ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        mode = "ro" if self.read_only else "rwc" if self._may_create else "rw"
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False only so
        # close() may close connections of other threads; each thread otherwise uses its own.
        try:
            conn = sqlite3.connect(
                f"file:{quote(self.path)}?mode={mode}",
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.OperationalError as exc:
            if self._identity is not None:
                self.check_file()  # the usual reason a later connection cannot open: the log is gone
            raise StoreUnavailable(f"open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA synchronous=FULL")
            if self._identity is not None:
                # a later thread's connection: it must reach the file the store opened
                self.check_file()
        except BaseException:
            conn.close()
            raise
        return conn

    def handle(self) -> _Handle:
        """This thread's connection handle, opened on first use.

        One connection per thread because a SQLite connection carries its own transaction
        state; a thread must never see another thread's BEGIN.
        """
        if self._pid != os.getpid():
            # A forked child must not touch its parent's SQLite connections (or locks that may
            # have been held at fork time): drop them unclosed and start afresh.
            self._start_afresh()
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is not None:
            return handle
        if self.closed:
            raise StoreUnavailable(f"the event store {self.path} is closed")
        handle = _Handle(self._connect(), weakref.ref(threading.current_thread()))
        with self._handles_lock:
            if self.closed:
                handle.conn.close()
                raise StoreUnavailable(f"the event store {self.path} is closed")
            # Close the connections of threads that have ended, so a thread-per-task caller does
            # not pile up open files until close().
            kept = []
            for other in self._handles:
                thread = other.thread()
                if thread is None or not thread.is_alive():
                    with other.lock:
                        other.conn.close()
                else:
                    kept.append(other)
            kept.append(handle)
            self._handles = kept
        self._local.handle = handle
        return handle

    def conn(self) -> sqlite3.Connection:
        """This thread's raw connection, for tests that set pragmas on it. Store code uses
        ``connection()``, which also keeps close() from closing it mid-statement."""
        return self.handle().conn

    @property
    def open_handles(self) -> int:
        return len(self._handles)

    @contextlib.contextmanager
    def connection(self, action: str) -> Iterator[sqlite3.Connection]:
        """This thread's connection, held for one operation, with errors mapped.

        The handle's lock is what makes close() from another thread safe: closing a SQLite
        connection while a statement runs on it crashes the interpreter, so close() takes each
        lock and thereby waits for the operation in flight to finish.
        """
        handle = self.handle()
        with handle.lock, self.mapped_errors(action):
            if self.closed:
                raise StoreUnavailable(f"the event store {self.path} is closed")
            yield handle.conn

    @contextlib.contextmanager
    def mapped_errors(self, action: str) -> Iterator[None]:
        """Turn storage-level failures into StoreUnavailable; let bugs surface as they are."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in UNAVAILABLE_CODES:
                raise StoreUnavailable(f"{action} {self.path}: {exc} ({exc.sqlite_errorname})") from exc
            raise

    def discard(self) -> None:
        """Close this thread's connection; its next operation opens a new one."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None:
            return
        self._local.handle = None
        with self._handles_lock:
            self._handles = [h for h in self._handles if h is not handle]
        with handle.lock:
            handle.conn.close()

    def close(self) -> None:
        """Close every thread's connection, each once its operation in flight is done. Idempotent."""
        with self._handles_lock:
            if self.closed:
                return
            self.closed = True
            handles, self._handles = self._handles, []
        for handle in handles:
            with handle.lock:  # waits for that thread's operation in flight, if any
                with contextlib.suppress(sqlite3.Error):
                    handle.conn.close()


class _Handle:
    """A thread's connection and the lock held while it is in use."""

    __slots__ = ("conn", "lock", "thread")

    def __init__(self, conn: sqlite3.Connection, thread: weakref.ref[threading.Thread]) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.thread = thread
