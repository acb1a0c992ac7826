"""A registered version's evaluation on the record: EvaluationRecorded in its program's stream."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from dspy.utils.callback import BaseCallback

from dspyops.errors import Aborted, FailedPrecondition
from dspyops.names import program_stream
from dspyops.proto import events_pb2 as pb
from dspyops.state import ProgramState
from optimizer_svc.cancel import CancelToken
from optimizer_svc.evaluation.plan import EvaluationPlan
from optimizer_svc.evaluation.report import build_report
from optimizer_svc.evaluation.run import Progress, run_evaluation
from optimizer_svc.registry.commands import Registry

_RECORD_ATTEMPTS = 20


def record_evaluation(registry: Registry, report: pb.EvaluationReport, artifact_digest: str) -> None:
    """Append EvaluationRecorded (no per-example results) to program-<name>.

    The expected stream version comes from the same folded state that shows the version
    still exists with the evaluated artifact; a concurrent append re-reads and retries.
    """
    summary = pb.EvaluationReport()
    summary.CopyFrom(report)
    del summary.results[:]
    event = pb.EvaluationRecorded(program=report.program, version=report.version, report=summary)
    for attempt in range(_RECORD_ATTEMPTS):
        program: ProgramState = registry.program(report.program)
        version = program.versions.get(report.version)
        if version is None or version.artifact_digest != artifact_digest:
            raise FailedPrecondition(
                "version", f"{report.program} {report.version} changed during the evaluation"
            )
        try:
            registry.ledger.append(program_stream(report.program), [event], program.stream_version)
            return
        except Aborted:
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise FailedPrecondition("program", f"could not record the evaluation of {report.program!r}: contention")


def evaluate_blocking(
    plan: EvaluationPlan,
    registry: Registry,
    progress: Progress | None,
    cancel: CancelToken | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> pb.EvaluationReport:
    run = run_evaluation(
        plan.target, plan.dataset, plan.metric, plan.num_threads, progress, cancel=cancel, callbacks=callbacks
    )
    report = build_report(plan, run, include_results=plan.include_results)
    if plan.target.version:
        if cancel is not None:
            cancel.check()  # a client that left during the run gets nothing recorded
        record_evaluation(registry, report, plan.target.artifact_digest)
    return report
