"""Cooperative cancellation of a running optimization job.

DSPy swallows ordinary exceptions in many places (callback handlers, Evaluate's worker
wrapper, BootstrapFewShot's per-example try, MIPROv2's candidate evaluation, Optuna
trials), so a cancel must be a ``BaseException``: it then passes every ``except
Exception`` on its way out, including out of ``ParallelExecutor`` worker threads, whose
futures re-raise it in the thread that waits on them.

``CancelCallback`` checks the token before every module and LM call; it belongs LAST in
the callback list so that the progress callbacks before it still see the call start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dspy.utils.callback import BaseCallback


class JobCancelled(BaseException):
    """Raised inside a job once its token is cancelled; BaseException so DSPy cannot swallow it."""

    def __init__(self, reason: str = "cancelled by user", budget: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.budget = budget  # the budget that was exceeded ("" for a cancel by request)


class CancelToken:
    """Set from any thread; checked by the job's callbacks, metric and runner."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason = ""
        self._budget = ""
        self._listeners: list[Callable[[], None]] = []

    def cancel(self, reason: str = "cancelled by user", *, budget: str = "") -> None:
        """Stop the job; ``budget`` names the budget it exceeded, if that is why."""
        with self._lock:
            if self._event.is_set():  # the first reason wins
                return
            self._reason = reason
            self._budget = budget
            self._event.set()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_cancel(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` once, when the token is cancelled (now, if it is already): how a
        job running elsewhere (a Ray task) is told. Returns what unregisters it."""
        with self._lock:
            cancelled = self._event.is_set()
            if not cancelled:
                self._listeners.append(listener)
        if cancelled:
            listener()

        def unregister() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unregister

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def budget(self) -> str:
        return self._budget

    def check(self) -> None:
        if self._event.is_set():
            raise JobCancelled(self._reason, self._budget)

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class CancelCallback(BaseCallback):
    """Stops a job at the next module, LM, evaluation or compile boundary.

    Raising from a start handler prevents the call itself, so a cancelled job makes at
    most the LM calls already in flight.
    """

    def __init__(self, token: CancelToken) -> None:
        self.token = token

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.token.check()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.token.check()

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.token.check()

    def on_evaluate_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        self.token.check()

    def on_compile_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.token.check()
