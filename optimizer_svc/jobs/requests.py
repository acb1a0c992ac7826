"""StartOptimizationRequest -> a validated job, before any LM call or any append.

Every problem is reported as INVALID_ARGUMENT naming the request field, e.g.
`params.max_bootstrapped_demos: must be an integer in [0, 64], got -1`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy

from dspyops.connections import Connections
from dspyops.datarefs import resolve_dataset_ref
from dspyops.datasets import dataset_digest, split
from dspyops.errors import DspyopsError, FailedPrecondition, InvalidArgument
from dspyops.lm import LMConfig
from dspyops.metrics import METRICS, allowed_metric_modules, resolve_metric
from dspyops.names import check_name
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.budgets import Budget, budget_from_proto
from optimizer_svc.jobs.gates import MustBeat, check_min_improvement
from optimizer_svc.jobs.inputs import check_logged_size, decode_examples, encode_examples, shared_input_keys
from optimizer_svc.optimizers.base import InvalidOptimizerParams
from optimizer_svc.optimizers.registry import get_adapter, params_from_struct, resolve_preset, validate_params
from optimizer_svc.wire import examples_from_proto, lm_from_proto, lm_to_proto, spec_from_proto

MAX_ATTEMPTS = 10  # a job's runs at most: each retry may pay for its LM calls again


@dataclass(frozen=True)
class ValidatedJob:
    program: str
    spec: ProgramSpec
    lm: LMConfig
    prompt_lm: LMConfig | None
    optimizer: str
    params: dict[str, Any]
    metric: str
    trainset: list[dspy.Example]
    valset: list[dspy.Example]
    min_score: float | None
    auto_promote: bool
    must_beat: str = ""
    min_improvement: float | None = None
    budget: Budget = field(default_factory=Budget)
    trainset_ref: opb.DatasetRef | None = None  # resolved (into trainset) by resolve_datasets
    valset_ref: opb.DatasetRef | None = None
    val_fraction: float = 0.0  # split the trainset when no valset is given (0: none)
    split_seed: int = 0
    must_beat_program: MustBeat | None = None  # loaded at submission
    max_attempts: int = 0  # runs before a lost job ends Interrupted (0: the server's default)
    learning: pb.JobLearning | None = None  # a learning loop's run (checked: optimizer_svc.jobs.learning)

    @property
    def trainset_digest(self) -> str:
        return dataset_digest(self.trainset)

    @property
    def valset_digest(self) -> str:
        return dataset_digest(self.valset) if self.valset else ""

    @classmethod
    def from_accepted(
        cls,
        accepted: pb.JobAccepted,
        connections: Connections | None = None,
        programs: ProgramContext = NO_CONTEXT,
    ) -> ValidatedJob:
        """The job a JobAccepted (with its ``inputs``) describes, for a replica that runs it
        again: validated as a request is, on this server's connections and programs, the sets
        decoded and checked against the digests the job was accepted with. ``must_beat`` is
        the version resolved at acceptance, not loaded yet (``JobManager.prepare`` loads it).
        Raises InvalidArgument (or what the request path raises) naming the JobAccepted field."""
        return job_from_accepted(accepted, connections, programs)


@dataclass(frozen=True)
class _Sets:
    trainset: list[dspy.Example]
    valset: list[dspy.Example]
    trainset_ref: opb.DatasetRef | None = None
    valset_ref: opb.DatasetRef | None = None
    val_fraction: float = 0.0
    split_seed: int = 0


def validate_start(
    request: opb.StartOptimizationRequest,
    connections: Connections | None = None,
    programs: ProgramContext = NO_CONTEXT,
) -> ValidatedJob:
    return _validate(request, connections, programs, _request_sets)


def _request_sets(request: opb.StartOptimizationRequest, spec: ProgramSpec) -> _Sets:
    trainset_ref = request.trainset_ref if request.HasField("trainset_ref") else None
    valset_ref = request.valset_ref if request.HasField("valset_ref") else None
    if trainset_ref is not None and request.trainset:
        raise InvalidArgument("trainset_ref", "give trainset or trainset_ref, not both")
    if valset_ref is not None and request.valset:
        raise InvalidArgument("valset_ref", "give valset or valset_ref, not both")
    if trainset_ref is None and not request.trainset:
        raise InvalidArgument("trainset", "at least one example is required (or a trainset_ref)")
    trainset = examples_from_proto(request.trainset, spec, "trainset")
    valset = examples_from_proto(request.valset, spec, "valset")
    val_fraction = request.val_fraction
    if not (math.isfinite(val_fraction) and 0.0 <= val_fraction < 1.0):
        raise InvalidArgument("val_fraction", f"must be in [0, 1), got {val_fraction}")
    if val_fraction and (request.valset or valset_ref is not None):
        raise InvalidArgument("val_fraction", "splits the trainset only when no valset is given")
    return _Sets(trainset, valset, trainset_ref, valset_ref, val_fraction, request.split_seed)


def _validate(
    request: opb.StartOptimizationRequest,
    connections: Connections | None,
    programs: ProgramContext,
    sets_of: Callable[[opb.StartOptimizationRequest, ProgramSpec], _Sets],
) -> ValidatedJob:
    program = check_name("program", request.program)
    spec = spec_from_proto(request.spec, "spec", programs)
    if spec.wrapper:
        # what KNNFewShot and Ensemble build around the module: a job optimizes the module itself
        raise InvalidArgument(
            "spec.wrapper", "is set by the KNNFewShot and Ensemble optimizers, not by a job's request"
        )
    lm = lm_from_proto(request.lm, "lm", connections)
    prompt_lm = (
        lm_from_proto(request.prompt_lm, "prompt_lm", connections) if request.HasField("prompt_lm") else None
    )
    optimizer = request.optimizer
    if not request.preset and not optimizer:
        raise InvalidArgument("optimizer", "is required (or name a preset)")
    try:
        raw_params = params_from_struct(request.params) if request.HasField("params") else {}
        if request.preset:
            optimizer, raw_params = resolve_preset(request.preset, optimizer, raw_params)
        params = validate_params(optimizer, raw_params)
    except InvalidOptimizerParams as exc:
        raise InvalidArgument(exc.field, exc.problem) from None
    metric = request.metric or "exact_match"
    if metric not in METRICS:
        try:  # module:function from a module allowlisted at server start; nothing else is imported
            resolve_metric(metric, allowed_metric_modules())
        except ValueError as exc:
            raise InvalidArgument("metric", str(exc).removeprefix("metric: ")) from None
    sets = sets_of(request, spec)
    if get_adapter(optimizer).needs_valset and not (sets.valset or sets.valset_ref or sets.val_fraction):
        # it selects among candidates on a valset: on the trainset it would pick what overfits
        raise InvalidArgument(
            "valset", f"{optimizer} needs a validation set: give valset, valset_ref or val_fraction > 0"
        )
    min_score = request.min_score if request.HasField("min_score") else None
    if min_score is not None and not (math.isfinite(min_score) and 0.0 <= min_score <= 1.0):
        raise InvalidArgument("min_score", f"must be in [0, 1], got {min_score}")
    min_improvement = check_min_improvement(
        request.min_improvement if request.HasField("min_improvement") else None
    )
    must_beat = request.must_beat
    if len(must_beat) > 200:
        raise InvalidArgument("must_beat", "longer than 200 characters")
    budget = budget_from_proto(request.budget) if request.HasField("budget") else Budget()
    if not 0 <= request.max_attempts <= MAX_ATTEMPTS:
        raise InvalidArgument(
            "max_attempts",
            f"must be in [0, {MAX_ATTEMPTS}] (0: the server's default), got {request.max_attempts}",
        )
    return ValidatedJob(
        program=program,
        spec=spec,
        lm=lm,
        prompt_lm=prompt_lm,
        optimizer=optimizer,
        params=params,
        metric=metric,
        trainset=sets.trainset,
        valset=sets.valset,
        min_score=min_score,
        auto_promote=request.auto_promote,
        must_beat=must_beat,
        min_improvement=min_improvement,
        budget=budget,
        trainset_ref=sets.trainset_ref,
        valset_ref=sets.valset_ref,
        val_fraction=sets.val_fraction,
        split_seed=sets.split_seed,
        max_attempts=request.max_attempts,
    )


def resolve_datasets(job: ValidatedJob, datasets_dir: Path | None) -> ValidatedJob:
    """Read the referenced sets and split off a validation share: the sets the job runs on
    (and whose digests go into its lineage). Before any LM call or append."""
    trainset, valset = job.trainset, job.valset
    if job.trainset_ref is not None:
        trainset = resolve_dataset_ref(datasets_dir, job.trainset_ref, job.spec, "trainset_ref")
    if job.valset_ref is not None:
        valset = resolve_dataset_ref(datasets_dir, job.valset_ref, job.spec, "valset_ref")
    if job.val_fraction:
        if len(trainset) < 2:
            raise InvalidArgument("val_fraction", "needs at least two training examples to split")
        trainset, valset = split(trainset, job.val_fraction, job.split_seed)
    # resolved: nothing is left to read or split (so preparing a job twice changes nothing)
    return dataclasses.replace(
        job,
        trainset=trainset,
        valset=valset,
        trainset_ref=None,
        valset_ref=None,
        val_fraction=0.0,
        split_seed=0,
    )


# ---------------------------------------------------------------------- the job on the record


def job_inputs(job: ValidatedJob) -> pb.JobInputs:
    """What JobAccepted carries besides its own fields, for a replica to run ``job`` again:
    the resolved sets (``resolve_datasets`` first), their input keys, the prompt LM, the
    budget, the must_beat version resolved at acceptance, the min_improvement."""
    if job.trainset_ref is not None or job.valset_ref is not None or job.val_fraction:
        raise ValueError("job_inputs: resolve the job's datasets first (JobManager.prepare)")
    if job.must_beat and job.must_beat_program is None:
        raise ValueError("job_inputs: resolve the job's must_beat first (JobManager.prepare)")
    inputs = pb.JobInputs(
        trainset=encode_examples(job.trainset),
        valset=encode_examples(job.valset),
        input_keys=shared_input_keys([("trainset", job.trainset), ("valset", job.valset)]),
        budget=job.budget.to_proto(),
        must_beat_version=job.must_beat_program.version if job.must_beat_program else "",
    )
    if job.prompt_lm is not None:
        inputs.prompt_lm.CopyFrom(lm_to_proto(job.prompt_lm))
    if job.min_improvement is not None:
        inputs.min_improvement = job.min_improvement
    return inputs


def check_accepted_size(accepted: pb.JobAccepted) -> None:
    """INVALID_ARGUMENT naming the sets when the JobAccepted would not fit one event."""
    check_logged_size(accepted.ByteSize(), len(accepted.inputs.trainset), len(accepted.inputs.valset))


# JobAccepted carries these settings in its inputs: their errors name inputs.<field>
_IN_INPUTS = {
    "prompt_lm": "prompt_lm",
    "budget": "budget",
    "must_beat": "must_beat_version",
    "min_improvement": "min_improvement",
}


def job_from_accepted(
    accepted: pb.JobAccepted, connections: Connections | None, programs: ProgramContext
) -> ValidatedJob:
    """``ValidatedJob.from_accepted``: the JobAccepted as the request it was, through the
    request's own checks, with the sets from its inputs."""
    if not accepted.HasField("inputs"):
        raise FailedPrecondition(
            "inputs", "the job was accepted before JobAccepted carried its inputs: it cannot be run again"
        )
    inputs = accepted.inputs
    request = opb.StartOptimizationRequest(
        program=accepted.program,
        spec=accepted.spec,
        lm=accepted.lm,
        optimizer=accepted.optimizer,
        params=accepted.params,
        metric=accepted.metric,
        auto_promote=accepted.auto_promote,
        must_beat=inputs.must_beat_version,
        budget=inputs.budget,
    )
    if accepted.HasField("min_score"):
        request.min_score = accepted.min_score
    if inputs.HasField("prompt_lm"):
        request.prompt_lm.CopyFrom(inputs.prompt_lm)
    if inputs.HasField("min_improvement"):
        request.min_improvement = inputs.min_improvement

    def logged_sets(_: opb.StartOptimizationRequest, spec: ProgramSpec) -> _Sets:
        keys = list(inputs.input_keys)
        sets = []
        for name in ("trainset", "valset"):
            examples = decode_examples(getattr(inputs, name), spec, keys, f"inputs.{name}")
            digest = dataset_digest(examples) if examples else ""
            if digest != getattr(accepted, f"{name}_digest"):
                raise InvalidArgument(
                    f"inputs.{name}",
                    f"its examples have digest {digest or '(none)'}, the job was accepted with "
                    f"{name}_digest {getattr(accepted, f'{name}_digest') or '(none)'}",
                )
            sets.append(examples)
        if not sets[0]:
            raise InvalidArgument("inputs.trainset", "holds no examples")
        return _Sets(sets[0], sets[1])

    try:
        return _validate(request, connections, programs, logged_sets)
    except DspyopsError as exc:
        root, dot, rest = exc.field.partition(".")
        if root not in _IN_INPUTS:
            raise
        raise type(exc)(f"inputs.{_IN_INPUTS[root]}{dot}{rest}", exc.problem) from None
