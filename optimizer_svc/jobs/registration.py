"""A finished job's result on the record: its quality gate, its artifact, its version.

The verdict (GateEvaluated) is recorded before the version is registered; a job that fails
its gate still registers its version, as DEVELOPMENT, and never auto-promotes
(optimizer_svc.jobs.gates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from dspyops.artifacts import ArtifactStore, encode_artifact
from dspyops.programs.code import code_identity
from dspyops.proto import events_pb2 as pb
from dspyops.state import ProgramState, State, VersionState
from optimizer_svc.jobs.gates import evaluate_gate
from optimizer_svc.jobs.requests import ValidatedJob
from optimizer_svc.jobs.runner import JobResult
from optimizer_svc.registry.commands import Registry
from optimizer_svc.wire import lm_to_proto, spec_to_proto


def register_result(
    job_id: str,
    job: ValidatedJob,
    result: JobResult,
    wall: float,
    *,
    artifacts: ArtifactStore,
    registry: Registry,
    record_gate: Callable[[pb.GateEvaluated], None],
) -> pb.JobCompleted:
    """Store the artifact, record the gate's verdict (`record_gate`), register the version
    (promoted when the job asked and the gate passed); the JobCompleted to record last."""
    digest, artifact = encode_artifact(result.spec, result.state, job.lm)
    artifacts.put(artifact)
    gate = evaluate_gate(
        final_score=result.final_score,
        baseline_score=result.baseline_score,
        min_score=job.min_score,
        must_beat=job.must_beat_program.version if job.must_beat_program else "",
        must_beat_score=result.must_beat_score,
        min_improvement=job.min_improvement,
    )
    record_gate(gate)  # the verdict is on the record before the version
    gate_passed, gate_reason = gate.passed, gate.reason
    code = code_identity(job.spec)  # the user code it runs, as this server imported it
    registered = pb.VersionRegistered(
        program=job.program,
        spec=spec_to_proto(result.spec),
        lm=lm_to_proto(job.lm),
        artifact_digest=digest,
        artifact=artifact,
        status=pb.DEVELOPMENT,
        lineage=pb.Lineage(
            job_id=job_id,
            optimizer=job.optimizer,
            params=params_struct(job.params),
            metric=job.metric,
            trainset_digest=job.trainset_digest,
            valset_digest=job.valset_digest,
            trainset_size=len(job.trainset),
            valset_size=len(job.valset),
            baseline_score=result.baseline_score,
            final_score=result.final_score,
            dspy_version=dspy.__version__,
            code_digests=code.digests,
            code_distribution=code.distribution,
            code_version=code.version,
            corpora=result.corpora,  # the digests its Retrieve stages searched
        ),
    )
    # at most one version per job: a job run again (its first owner registered, then died)
    # gets the version registered first; and one version per artifact: a job whose result
    # serves as a version does (the same job run twice) names that version. Both decided on
    # the state the append would go on.
    version = registry.register_version(
        registered,
        promote=job.auto_promote and gate_passed,
        existing=lambda program: version_by_job(program, job_id) or version_by_artifact(program, registered),
    )
    completed = completed_from(
        version, usage=result.usage.to_proto(), wall=wall, gate_passed=gate_passed, gate_reason=gate_reason
    )
    if version.lineage.get("job_id") != job_id:  # another job's version: report this job's scores
        completed.final_score, completed.baseline_score = result.final_score, result.baseline_score
        completed.improvement = result.final_score - result.baseline_score
        completed.existing_version = True
    return completed


def version_by_job(program: ProgramState | None, job_id: str) -> str | None:
    """The version of ``program`` whose lineage names ``job_id`` (the first, should a log
    written before this rule hold several)."""
    if program is None or not job_id:
        return None
    return next((v.version for v in program.versions.values() if v.lineage.get("job_id") == job_id), None)


def version_by_artifact(program: ProgramState | None, registered: pb.VersionRegistered) -> str | None:
    """The first version of ``program`` that serves as ``registered`` would: the same artifact
    (spec, state, LM), the same corpora its Retrieve stages search and the same user code."""
    if program is None:
        return None
    lineage = registered.lineage
    corpora, code = dict(lineage.corpora), dict(lineage.code_digests)
    return next(
        (
            v.version
            for v in program.versions.values()
            if v.artifact_digest == registered.artifact_digest
            and dict(v.lineage.get("corpora") or {}) == corpora
            and dict(v.lineage.get("code_digests") or {}) == code
        ),
        None,
    )


def registered_version_of(state: State, program: str, job_id: str) -> str | None:
    """The version job ``job_id`` registered of ``program``, if it did: a replica taking a
    job over asks this first, and completes the job from that version instead of running it."""
    return version_by_job(state.programs.get(program), job_id)


def completed_from(
    version: VersionState, *, usage: pb.Usage, wall: float, gate_passed: bool, gate_reason: str
) -> pb.JobCompleted:
    """The JobCompleted naming ``version``: its scores and artifact as registered (for a
    version registered by an earlier attempt of the job, that attempt's)."""
    final = float(version.lineage.get("final_score", 0.0))
    baseline = float(version.lineage.get("baseline_score", 0.0))
    return pb.JobCompleted(
        program=version.program,
        version=version.version,
        final_score=final,
        baseline_score=baseline,
        improvement=final - baseline,
        gate_passed=gate_passed,
        gate_reason=gate_reason,
        status=pb.PRODUCTION if version.status == "production" else pb.DEVELOPMENT,
        usage=usage,
        wall_seconds=wall,
        artifact_digest=version.artifact_digest,
    )


def accepted_event(
    job: ValidatedJob, job_id: str, inputs: pb.JobInputs, *, max_attempts: int, lease_ms: int
) -> pb.JobAccepted:
    """The JobAccepted a submission appends: the job as validated, with its inputs, so any
    replica can run it again (`ValidatedJob.from_accepted`)."""
    accepted = pb.JobAccepted(
        job_id=job_id,
        program=job.program,
        spec=spec_to_proto(job.spec),
        lm=lm_to_proto(job.lm),
        optimizer=job.optimizer,
        params=params_struct(job.params),
        metric=job.metric,
        trainset_digest=job.trainset_digest,
        valset_digest=job.valset_digest,
        trainset_size=len(job.trainset),
        valset_size=len(job.valset),
        auto_promote=job.auto_promote,
        max_attempts=max_attempts,
        lease_ms=lease_ms,
        inputs=inputs,
    )
    if job.min_score is not None:
        accepted.min_score = job.min_score
    if job.learning is not None:
        accepted.learning.CopyFrom(job.learning)
    return accepted


def params_struct(params: dict[str, Any]) -> Struct:
    """A job's validated params as the Struct JobAccepted and its version's lineage record."""
    struct = Struct()
    ParseDict(_json_safe(params), struct)
    return struct


def _json_safe(params: dict) -> dict:
    return {
        k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v))
        for k, v in params.items()
    }
