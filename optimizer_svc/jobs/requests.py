"""StartOptimizationRequest -> a validated job, before any LM call or any append.

Every problem is reported as INVALID_ARGUMENT naming the request field, e.g.
`params.max_bootstrapped_demos: must be an integer in [0, 64], got -1`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy

from dspyops.connections import Connections
from dspyops.datarefs import resolve_dataset_ref
from dspyops.datasets import dataset_digest, split
from dspyops.errors import InvalidArgument
from dspyops.lm import LMConfig
from dspyops.metrics import METRICS, allowed_metric_modules, resolve_metric
from dspyops.names import check_name
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.budgets import Budget, budget_from_proto
from optimizer_svc.jobs.gates import MustBeat, check_min_improvement
from optimizer_svc.optimizers.base import InvalidOptimizerParams
from optimizer_svc.optimizers.registry import params_from_struct, resolve_preset, validate_params
from optimizer_svc.wire import examples_from_proto, lm_from_proto, spec_from_proto

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

    @property
    def trainset_digest(self) -> str:
        return dataset_digest(self.trainset)

    @property
    def valset_digest(self) -> str:
        return dataset_digest(self.valset) if self.valset else ""


def validate_start(
    request: opb.StartOptimizationRequest,
    connections: Connections | None = None,
    programs: ProgramContext = NO_CONTEXT,
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
        trainset=trainset,
        valset=valset,
        min_score=min_score,
        auto_promote=request.auto_promote,
        must_beat=must_beat,
        min_improvement=min_improvement,
        budget=budget,
        trainset_ref=trainset_ref,
        valset_ref=valset_ref,
        val_fraction=val_fraction,
        split_seed=request.split_seed,
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
    return dataclasses.replace(job, trainset=trainset, valset=valset, trainset_ref=None, valset_ref=None)
