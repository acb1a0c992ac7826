"""structlog set-up shared by both services: JSON lines on stderr, scrubbed.

Request handlers bind job_id / deployment with structlog's contextvars, so every line a
job or a prediction causes carries them. Nothing here formats a secret on purpose, and
whatever slips in is removed on the way out (``dspyops.scrub``):

- structlog events pass a scrubbing processor (after exceptions are formatted, before
  rendering, so a secret is matched before JSON escaping could change it);
- every ``logging`` record, from any library (DSPy, litellm, grpc, ...), is scrubbed when it
  is created: a LogRecord factory renders the message, the exception text and the stack
  once, scrubbed, so no handler, whenever it was attached, sees the raw text;
- ``guard_streams`` (service processes only) wraps stdout and stderr, for what reaches them
  without logging: print() from a library, tqdm bars, uncaught exceptions in threads.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from dspyops.scrub import scrub, scrub_value

_install_lock = threading.Lock()


def scrub_processor(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = scrub_value(value)
    return event_dict


def configure(service: str, level: str | None = None) -> structlog.stdlib.BoundLogger:
    level_name = (level or os.environ.get("DSPYOPS_LOG_LEVEL", "info")).upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_processor,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    scrub_log_records()
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(service=service)
    return logger


_FORMATTER = logging.Formatter()


class _ScrubbingRecordFactory:
    """Wraps the LogRecord factory in force: each record leaves it fully rendered and scrubbed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, with the raw args unshown
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info:
            # rendered here, once; handlers print exc_text and never see the exception itself
            record.exc_text = scrub(record.exc_text or _FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return record


def scrub_log_records() -> None:
    """Install the scrubbing LogRecord factory (once per process)."""
    with _install_lock:
        if not isinstance(logging.getLogRecordFactory(), _ScrubbingRecordFactory):
            logging.setLogRecordFactory(_ScrubbingRecordFactory(logging.getLogRecordFactory()))


class ScrubbingStream:
    """A text stream that scrubs what it passes on, a line at a time (a secret split over two
    writes of one line is still caught; a line is held until its newline or a flush)."""

    _MAX_PENDING = 64 * 1024

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            data = self._pending + text
            head, newline, tail = data.rpartition("\n")
            if newline:
                self._inner.write(scrub(head + newline))
                self._pending = tail
            else:
                self._pending = data
            if len(self._pending) > self._MAX_PENDING:
                self._inner.write(scrub(self._pending))
                self._pending = ""
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._inner.write(scrub(self._pending))
                self._pending = ""
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer, ...
        return getattr(self._inner, name)


def guard_streams() -> None:
    """Scrub this process's stdout and stderr (service processes; tests keep their capture).

    The last line of defence, for output that never goes through logging: a library's
    print(), progress bars, Python's report of an exception in a thread. The C core of grpc
    writes to the file descriptor directly; it never sees a key."""
    if not isinstance(sys.stdout, ScrubbingStream):
        sys.stdout = ScrubbingStream(sys.stdout)
    if not isinstance(sys.stderr, ScrubbingStream):
        sys.stderr = ScrubbingStream(sys.stderr)
