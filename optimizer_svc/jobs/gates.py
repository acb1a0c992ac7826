"""Quality gates of an optimization job: min_score, must_beat, min_improvement.

``must_beat`` names a version (or @alias) of the same program. It is resolved and its
program loaded from its artifact (dspyops.artifacts.version_artifact: the file, else the
log's copy) when the job is submitted (before any LM call or append), then scored by the
runner on the job's evaluation set with the job's metric and LM, inside the job's context
(so its LM calls count towards the job's usage and budget).

The verdict (``GateEvaluated``) is recorded before the version is registered; a job that
fails its gate still registers its version, as DEVELOPMENT, and never auto-promotes.

Rules, all of which must hold:

* ``min_score``: final score >= min_score.
* ``must_beat`` without ``min_improvement``: final score > must_beat's score (a tie does not beat).
* ``min_improvement``: final score - reference >= min_improvement, the reference being
  must_beat's score when set, else the job's baseline. A negative value allows that much
  regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dspy

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound, ArtifactStore, version_artifact
from dspyops.errors import FailedPrecondition, InvalidArgument
from dspyops.programs.build import load_program
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.errors import ProgramError
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from optimizer_svc.registry.commands import Registry


@dataclass(frozen=True)
class MustBeat:
    ref: str  # as requested: "1.0.0" or "@champion"
    version: str  # resolved semver
    spec: ProgramSpec
    program: dspy.Module


def check_min_improvement(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise InvalidArgument("min_improvement", f"must be in [-1, 1], got {value}")
    return value


def resolve_must_beat(
    registry: Registry,
    artifacts: ArtifactStore,
    program: str,
    ref: str,
    spec: ProgramSpec,
    programs: ProgramContext = NO_CONTEXT,
) -> MustBeat:
    """The version ``ref`` names, loaded; NOT_FOUND / INVALID_ARGUMENT naming must_beat."""
    state = registry.program(program, field="must_beat")
    version = registry._resolve(state, ref, field="must_beat")
    try:
        # the file, else the bytes the version's VersionRegistered event carries, as Evaluate loads it
        artifact = version_artifact(registry.ledger.store, version, artifacts)
    except (ArtifactNotFound, ArtifactCorrupt) as exc:
        raise FailedPrecondition("must_beat", f"version {version.version}: {exc}") from None
    fields = set(spec.input_fields()) | set(spec.output_fields())
    theirs = set(artifact.spec.input_fields()) | set(artifact.spec.output_fields())
    if not theirs <= fields or artifact.spec.output_fields() != spec.output_fields():
        raise InvalidArgument(
            "must_beat",
            f"version {version.version} has signature {artifact.spec.signature!r}: it cannot be scored "
            f"on the examples of {spec.signature!r}",
        )
    try:
        pinned = programs.for_version(version.lineage.get("corpora", {}), artifact.spec.stage_corpora())
        module = load_program(artifact.spec, artifact.state, pinned)
    except ProgramError as exc:  # its code is no longer allowlisted, or no longer fits
        raise FailedPrecondition("must_beat", f"version {version.version} cannot be loaded: {exc}") from None
    return MustBeat(ref=ref, version=version.version, spec=artifact.spec, program=module)


def evaluate_gate(
    *,
    final_score: float,
    baseline_score: float,
    min_score: float | None,
    must_beat: str = "",
    must_beat_score: float | None = None,
    min_improvement: float | None = None,
) -> pb.GateEvaluated:
    checks: list[tuple[bool, str]] = []
    if min_score is not None:
        ok = final_score >= min_score
        checks.append((ok, f"final score {final_score:.4f} {'>=' if ok else '<'} min_score {min_score:.4f}"))
    if must_beat and min_improvement is None:
        assert must_beat_score is not None
        ok = final_score > must_beat_score
        checks.append(
            (
                ok,
                f"final score {final_score:.4f} {'>' if ok else '<='} {must_beat_score:.4f} of must_beat "
                f"{must_beat}",
            )
        )
    if min_improvement is not None:
        if must_beat:
            assert must_beat_score is not None
            reference, label = must_beat_score, f"must_beat {must_beat} ({must_beat_score:.4f})"
        else:
            reference, label = baseline_score, f"the baseline ({baseline_score:.4f})"
        gain = final_score - reference
        ok = gain >= min_improvement - 1e-12
        verdict = ">=" if ok else "<"
        text = f"improvement {gain:+.4f} over {label} {verdict} min_improvement {min_improvement:+.4f}"
        checks.append((ok, text))
    passed = all(ok for ok, _ in checks)
    reason = "; ".join(text for _, text in checks) if checks else "no gate"
    gate = pb.GateEvaluated(passed=passed, reason=reason, final_score=final_score, must_beat=must_beat)
    if min_score is not None:
        gate.min_score = min_score
    if must_beat_score is not None:
        gate.must_beat_score = must_beat_score
    if min_improvement is not None:
        gate.min_improvement = min_improvement
    return gate


__all__ = ["MustBeat", "check_min_improvement", "evaluate_gate", "resolve_must_beat"]
