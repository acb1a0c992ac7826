"""Who caused an event: the identity recorded with every append.

The auth interceptor sets ``current_actor`` to the bearer token's name for the length of an
RPC; the ledger reads it when it appends, so every command's events carry their caller
without each service passing the name along by hand. Work that outlives the RPC (a job's
thread) copies the context it was submitted in. Events the services cause on their own
(jobs interrupted at restart, automatic canary decisions) are recorded as ``SYSTEM``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Final

SYSTEM: Final = "system"

#: the identity of the caller of the current request ("" without authentication)
current_actor: contextvars.ContextVar[str] = contextvars.ContextVar("dspyops_actor", default="")


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)
