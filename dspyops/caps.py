"""Concurrency caps: at most N holders on a server and M per caller; beyond, RESOURCE_EXHAUSTED.

A log subscription or an evaluation holds a slot for as long as it runs, so one caller
(or a crowd of them) cannot take a server's memory or threads: the next one is refused at
once with a status naming the cap and its flag, rather than queued without bound. The
caller is ``dspyops.actor.current_actor`` (the bearer token's name; "" without auth, so
then every caller shares the per-caller cap).

A slot is released from whichever thread finishes the work (an evaluation ends in its
executor thread, possibly after its RPC was cancelled), hence the lock.
"""

from __future__ import annotations

import threading
from types import TracebackType

from dspyops.actor import current_actor
from dspyops.errors import ResourceExhausted


class Cap:
    def __init__(self, what: str, total: int, per_actor: int | None = None, *, flags: str = "") -> None:
        """``what``: the held thing in the plural ("log subscriptions"); ``flags``: the
        server flags that set the cap, named in the refusal."""
        if total < 1 or (per_actor is not None and per_actor < 1):
            raise ValueError(f"{what}: caps must be >= 1, got {total} and {per_actor}")
        self.what = what
        self.total = total
        self.per_actor = per_actor
        self.flags = flags
        self._lock = threading.Lock()
        self._in_use = 0
        self._by_actor: dict[str, int] = {}

    @property
    def in_use(self) -> int:
        with self._lock:
            return self._in_use

    def acquire(self, actor: str | None = None) -> Slot:
        """A slot for ``actor`` (default: the current caller), or ResourceExhausted."""
        actor = current_actor.get() if actor is None else actor
        with self._lock:
            if self._in_use >= self.total:
                raise ResourceExhausted(
                    "", f"at most {self.total} {self.what} at once on this server{self._flags()}; retry later"
                )
            held = self._by_actor.get(actor, 0)
            if self.per_actor is not None and held >= self.per_actor:
                raise ResourceExhausted(
                    "", f"at most {self.per_actor} {self.what} at once per caller{self._flags()}; retry later"
                )
            self._in_use += 1
            self._by_actor[actor] = held + 1
        return Slot(self, actor)

    def _release(self, actor: str) -> None:
        with self._lock:
            self._in_use -= 1
            left = self._by_actor[actor] - 1
            if left:
                self._by_actor[actor] = left
            else:
                del self._by_actor[actor]

    def _flags(self) -> str:
        return f" ({self.flags})" if self.flags else ""


class Slot:
    """One held place in a Cap; ``release`` is idempotent, and so is leaving the ``with``."""

    def __init__(self, cap: Cap, actor: str) -> None:
        self._cap = cap
        self._actor = actor
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._cap._release(self._actor)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
