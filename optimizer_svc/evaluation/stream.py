"""Evaluate's body: validate, run in the evaluation pool off the event loop, and stream the
run's progress through the loop as it happens, then the report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from pathlib import Path

from dspyops.artifacts import ArtifactStore
from dspyops.connections import Connections
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.evaluation.plan import prepare_evaluation
from optimizer_svc.evaluation.pool import EvaluationPool
from optimizer_svc.evaluation.record import evaluate_blocking
from optimizer_svc.registry.commands import Registry


async def stream_evaluation(
    request: opb.EvaluateRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    allowed_metric_modules: Collection[str],
    datasets_dir: Path | None,
    pool: EvaluationPool,
    connections: Connections | None = None,
    programs: ProgramContext = NO_CONTEXT,
) -> AsyncIterator[opb.EvaluationEvent]:
    """Validate, then run in the evaluation pool; progress is handed to the loop as it happens."""
    slot = pool.admit()
    try:
        plan = await asyncio.to_thread(
            prepare_evaluation,
            request,
            registry,
            artifacts,
            allowed_metric_modules,
            datasets_dir,
            connections,
            programs,
        )
    except BaseException:
        slot.release()
        raise
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[opb.EvaluationEvent] = asyncio.Queue()

    def progress(done: int, total: int, running: float) -> None:
        event = opb.EvaluationEvent(
            progress=opb.EvaluationProgress(done=done, total=total, running_score=running)
        )
        loop.call_soon_threadsafe(queue.put_nowait, event)

    # A client that goes away cancels this generator; `task` is then cancelled too, which
    # stops the run at its next LM call (and records nothing).
    task = asyncio.ensure_future(
        pool.run(slot, lambda token, callbacks: evaluate_blocking(plan, registry, progress, token, callbacks))
    )
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            try:
                finished, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter in finished:
                yield getter.result()
                continue
            break
        while not queue.empty():  # progress handed over just before the run ended
            yield queue.get_nowait()
        report = await task
    finally:
        if not task.done():
            task.cancel()
    yield opb.EvaluationEvent(report=report)
