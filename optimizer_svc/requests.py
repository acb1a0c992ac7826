"""StartOptimizationRequest -> a validated job, before any LM call or any append.

Every problem is reported as INVALID_ARGUMENT naming the request field, e.g.
`trainset[3].fields: missing "label" (an output of the signature)`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy

from dspyops.connections import OFFLINE_ONLY, Connections, ResolvedLM
from dspyops.datarefs import resolve_dataset_ref
from dspyops.datasets import dataset_digest, split
from dspyops.errors import InvalidArgument
from dspyops.lm import OFFLINE, LMConfig
from dspyops.metrics import METRICS, allowed_metric_modules, resolve_metric
from dspyops.names import check_name
from dspyops.programs import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub
from optimizer_svc.budgets import Budget, budget_from_proto
from optimizer_svc.gates import MustBeat, check_min_improvement
from optimizer_svc.optimizers import InvalidOptimizerParams, params_from_struct, validate_params
from optimizer_svc.presets import resolve as resolve_preset

MAX_EXAMPLES = 5000  # per set; the gRPC message limit bounds the bytes (README: limits)
MAX_FIELD_CHARS = 20_000


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

    @property
    def trainset_digest(self) -> str:
        return dataset_digest(self.trainset)

    @property
    def valset_digest(self) -> str:
        return dataset_digest(self.valset) if self.valset else ""


def _field_error(prefix: str, exc: ValueError) -> InvalidArgument:
    """ValueError('signature: ...') from the kernel -> InvalidArgument('spec.signature', '...')."""
    name, sep, problem = str(exc).partition(": ")
    if sep and name.isidentifier():
        return InvalidArgument(f"{prefix}.{name}", problem)
    return InvalidArgument(prefix, str(exc))


def spec_from_proto(spec: pb.ProgramSpec, field: str = "spec") -> ProgramSpec:
    result = ProgramSpec(
        module=spec.module or "Predict", signature=spec.signature, instructions=spec.instructions
    )
    try:
        result.validate()
    except ValueError as exc:
        raise _field_error(field, exc) from None
    return result


def resolve_lm(lm: pb.LMConfig, field: str = "lm", connections: Connections | None = None) -> ResolvedLM:
    """A request's LM, checked against the server's connections (none given: only the
    offline one). Raises INVALID_ARGUMENT / PERMISSION_DENIED naming the field."""
    config = LMConfig(
        connection=lm.connection or OFFLINE,  # "" in a request is the offline connection, never "legacy"
        model=lm.model,
        temperature=lm.temperature,
        max_tokens=lm.max_tokens,
        api_base=lm.api_base,
        api_key_env=lm.api_key_env,
    )
    return (connections or OFFLINE_ONLY).resolve(config, field)


def lm_from_proto(lm: pb.LMConfig, field: str = "lm", connections: Connections | None = None) -> LMConfig:
    """What a version records of the request's LM: connection, model, sampling settings."""
    return resolve_lm(lm, field, connections).record()


def lm_to_proto(config: LMConfig) -> pb.LMConfig:
    return pb.LMConfig(
        connection=config.connection,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        api_base=scrub(config.api_base),  # userinfo of a config recorded before connections
        api_key_env=config.api_key_env,
    )


def spec_to_proto(spec: ProgramSpec) -> pb.ProgramSpec:
    return pb.ProgramSpec(module=spec.module, signature=spec.signature, instructions=spec.instructions)


def examples_from_proto(examples: Any, spec: ProgramSpec, field: str) -> list[dspy.Example]:
    if len(examples) > MAX_EXAMPLES:
        raise InvalidArgument(field, f"at most {MAX_EXAMPLES} examples inline, got {len(examples)}")
    inputs, outputs = spec.input_fields(), spec.output_fields()
    result = []
    for i, example in enumerate(examples):
        fields = dict(example.fields)
        where = f"{field}[{i}]"
        for name in (*inputs, *outputs):
            if name not in fields:
                role = "input" if name in inputs else "output"
                raise InvalidArgument(f"{where}.fields", f"missing {name!r} (an {role} of the signature)")
        for name, value in fields.items():
            if len(value) > MAX_FIELD_CHARS:
                raise InvalidArgument(f"{where}.fields.{name}", f"longer than {MAX_FIELD_CHARS} characters")
        keys = list(example.input_keys) or inputs
        unknown = [k for k in keys if k not in fields]
        if unknown:
            raise InvalidArgument(f"{where}.input_keys", f"{unknown} are not fields of the example")
        result.append(dspy.Example(**fields).with_inputs(*keys))
    return result


def validate_start(
    request: opb.StartOptimizationRequest, connections: Connections | None = None
) -> ValidatedJob:
    program = check_name("program", request.program)
    spec = spec_from_proto(request.spec)
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
