"""The bounded executor of Evaluate and CompareVersions.

Evaluations run in their own executor (``--max-evaluations``; beyond the cap
RESOURCE_EXHAUSTED), never in asyncio's default one that the RPC handlers'
``asyncio.to_thread`` calls share: 8 evaluations against a stalling LM used to take all 6
of its threads there, and ListPrograms and SetRoutes timed out for minutes. An evaluation
whose client has gone (a cancelled stream, a passed deadline) stops at its next LM or
module call (a ``CancelToken`` checked by ``CancelCallback``) and records nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import structlog
from dspy.utils.callback import BaseCallback

from dspyops.caps import Cap, Slot
from dspyops.errors import Unavailable
from optimizer_svc.cancel import CancelToken, JobCancelled

DEFAULT_MAX_EVALUATIONS = 4  # like the job cap (--max-jobs)

T = TypeVar("T")


class EvaluationCancelled(Unavailable):
    """An evaluation stopped before its end: its client went away, or the server is stopping."""

    def __init__(self, reason: str) -> None:
        super().__init__("", f"the evaluation was stopped: {reason}")


class _LMCalls(BaseCallback):
    """Counts the LM calls every evaluation of a pool made, cancelled ones included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._lock:
            self.calls += 1


class EvaluationPool:
    """The bounded executor of Evaluate and CompareVersions.

    ``admit`` takes one of ``max_running`` slots or raises ResourceExhausted; the executor
    has exactly that many threads, so an admitted evaluation starts at once and nothing
    queues. A slot is released when the evaluation's thread is done, not when its RPC ends:
    a client that cancels and retries cannot pile up threads still finishing an LM call.
    """

    def __init__(self, max_running: int = DEFAULT_MAX_EVALUATIONS) -> None:
        self.cap = Cap("evaluations", max_running, flags="--max-evaluations")
        self._executor = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="evaluation")
        self._lock = threading.Lock()
        self._tokens: set[CancelToken] = set()
        self._lm_calls = _LMCalls()

    @property
    def running(self) -> int:
        """Evaluations whose thread has not finished yet."""
        return self.cap.in_use

    @property
    def lm_calls(self) -> int:
        """LM calls made by this pool's evaluations so far."""
        return self._lm_calls.calls

    def admit(self) -> Slot:
        return self.cap.acquire()

    async def run(self, slot: Slot, work: Callable[[CancelToken, Sequence[BaseCallback]], T]) -> T:
        """Run ``work(token, callbacks)`` in the pool; it owns ``slot`` from here on. If the
        awaiting task is cancelled (the RPC ended), the token stops the work at its next call."""
        token = CancelToken()
        context = contextvars.copy_context()  # the caller's actor, for what the work appends

        def call() -> T:
            try:
                return context.run(work, token, [self._lm_calls])
            except JobCancelled as exc:  # keep BaseExceptions out of asyncio
                raise EvaluationCancelled(exc.reason) from None

        def done(_: Future[T]) -> None:
            with self._lock:
                self._tokens.discard(token)
            slot.release()

        with self._lock:
            self._tokens.add(token)
        try:
            future = self._executor.submit(call)
        except BaseException:
            done(Future())
            raise
        future.add_done_callback(done)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            token.cancel("the client went away")
            structlog.get_logger().info("evaluation_cancelled", reason="the client went away")
            raise

    def shutdown(self) -> None:
        """Stop every running evaluation at its next call; do not wait for them."""
        with self._lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.cancel("the server is stopping")
        self._executor.shutdown(wait=False, cancel_futures=True)
