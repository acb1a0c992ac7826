"""A declarative pipeline: named stages wired by name, checked before any LM call, and run
as an ordinary ``dspy.Module``.

Each stage input names its source: ``input.<field>`` (a field of the request; the program's
inputs are exactly these) or ``<stage>.<field>`` (an output of another stage). The program's
outputs are ``Pipeline.outputs``: output field -> ``<stage>.<field>``. ``PipelineSpec.check``
refuses, naming the stage and the field: an unknown source, a stage input left unwired, a
cycle, a program output that no stage produces, a stage output nothing uses (a stage's
declared outputs must all be used; ChainOfThought's ``reasoning`` and ReAct's ``trajectory``
may be), duplicate or reserved stage names, and more than ``MAX_STAGES`` stages.

``PipelineModule`` holds each stage's module as an attribute named after the stage, so its
predictors are ``<stage>`` (Predict), ``<stage>.predict`` (ChainOfThought), ``<stage>.react``
and ``<stage>.extract.predict`` (ReAct): optimizers, DSPy's saved state and explain see plain
DSPy. ``forward`` and ``aforward`` run the stages in dependency order (ties in the order the
stages are listed) and return a ``dspy.Prediction`` of the named outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import dspy

from dspyops.errors import shown
from dspyops.programs.asynccall import acall
from dspyops.programs.errors import ProgramError
from dspyops.programs.stages import StageSpec, is_identifier

MAX_STAGES: Final = 32
MAX_OUTPUTS: Final = 100
MAX_SOURCE_CHARS: Final = 200
INPUT: Final = "input"  # the source prefix of the request's fields: no stage may take the name
# a stage is an attribute of the module: it may not shadow what dspy.Module has
_RESERVED: Final = frozenset(
    {INPUT, "callbacks", "history", "lm", "demos", "forward", "aforward"}
) | frozenset(name for name in dir(dspy.Module) if not name.startswith("_"))


@dataclass(frozen=True)
class Source:
    stage: str  # "" for a field of the request
    field: str

    def __str__(self) -> str:
        return f"{self.stage or INPUT}.{self.field}"


def parse_source(text: str) -> Source | None:
    if not isinstance(text, str) or len(text) > MAX_SOURCE_CHARS or text.count(".") != 1:
        return None
    stage, field = text.split(".")
    if not is_identifier(stage) or not is_identifier(field):
        return None
    return Source("" if stage == INPUT else stage, field)


@dataclass(frozen=True)
class PipelineSpec:
    stages: tuple[StageSpec, ...]
    outputs: tuple[tuple[str, str], ...]  # (program output field, "<stage>.<field>"), by field

    # ---------------------------------------------------------------- the program's fields

    def program_inputs(self) -> list[str]:
        """The ``input.<field>`` sources, in order of first use (stages as listed)."""
        seen: dict[str, None] = {}
        for stage in self.stages:
            for _, text in stage.inputs:
                source = parse_source(text)
                if source is not None and not source.stage:
                    seen.setdefault(source.field)
        return list(seen)

    def program_outputs(self) -> list[str]:
        return [name for name, _ in self.outputs]

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.stages if s.name == name)

    def order(self) -> list[StageSpec]:
        """Stages in dependency order, ties in listed order (for a checked pipeline)."""
        done: set[str] = set()
        ordered: list[StageSpec] = []
        while len(ordered) < len(self.stages):
            for stage in self.stages:
                if stage.name not in done and _dependencies(stage) <= done:
                    ordered.append(stage)
                    done.add(stage.name)
                    break
            else:  # pragma: no cover - check() refuses cycles
                raise ProgramError("pipeline", "the stages form a cycle")
        return ordered

    # ---------------------------------------------------------------- the wiring check

    def check(self) -> None:
        if not self.stages:
            raise ProgramError("pipeline.stages", "a pipeline needs at least one stage")
        if len(self.stages) > MAX_STAGES:
            raise ProgramError("pipeline.stages", f"at most {MAX_STAGES} stages, got {len(self.stages)}")
        by_name: dict[str, int] = {}
        for i, stage in enumerate(self.stages):
            where = f"pipeline.stages[{i}]"
            stage.check(where)
            if stage.name in _RESERVED:
                raise ProgramError(
                    f"{where}.name", f"{stage.name!r} is reserved (an attribute of dspy.Module, or 'input')"
                )
            if stage.name in by_name:
                raise ProgramError(
                    f"{where}.name",
                    f"stage {stage.name!r} is also stage {by_name[stage.name]}: names must be unique",
                )
            by_name[stage.name] = i
        for i, stage in enumerate(self.stages):
            self._check_inputs(i, stage, by_name)
        self._check_cycles(by_name)
        self._check_outputs(by_name)
        self._check_every_output_used()

    def _check_inputs(self, i: int, stage: StageSpec, by_name: Mapping[str, int]) -> None:
        where = f"pipeline.stages[{i}].inputs"
        wanted = stage.input_fields()
        for field, text in stage.inputs:
            if field not in wanted:
                raise ProgramError(
                    f"{where}.{field}" if is_identifier(field) else where,
                    f"{shown(field)} is not an input of stage {stage.name!r} "
                    f"(its inputs: {', '.join(wanted)})",
                )
            source = parse_source(text)
            if source is None:
                raise ProgramError(
                    f"{where}.{field}",
                    f"{shown(text)} is not a source: write input.<field> or <stage>.<field>",
                )
            if not source.stage:
                if source.field.startswith("_"):
                    raise ProgramError(
                        f"{where}.{field}", f"program input {source.field!r} may not start with '_'"
                    )
                continue
            if source.stage not in by_name:
                raise ProgramError(
                    f"{where}.{field}",
                    f"unknown source {shown(text)}: there is no stage {source.stage!r} "
                    f"(stages: {', '.join(by_name)}; the request's fields are input.<field>)",
                )
            if source.stage == stage.name:
                raise ProgramError(
                    f"{where}.{field}", f"stage {stage.name!r} takes its own output {text!r}: a cycle"
                )
            producer = self.stages[by_name[source.stage]]
            if source.field not in (*producer.output_fields(), *producer.extra_outputs()):
                raise ProgramError(
                    f"{where}.{field}",
                    f"unknown source {shown(text)}: stage {source.stage!r} has no output {source.field!r} "
                    f"(its outputs: {', '.join(producer.output_fields())})",
                )
        wired = {field for field, _ in stage.inputs}
        for field in wanted:
            if field not in wired:
                raise ProgramError(
                    f"{where}.{field}",
                    f"input {field!r} of stage {stage.name!r} is not wired: give it a source "
                    "(input.<field> or <stage>.<field>)",
                )

    def _check_cycles(self, by_name: Mapping[str, int]) -> None:
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        path: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            path.append(name)
            stage = self.stages[by_name[name]]
            for field, text in stage.inputs:
                source = parse_source(text)
                assert source is not None
                if not source.stage:
                    continue
                if state.get(source.stage) == 1:
                    loop = [*path[path.index(source.stage) :], source.stage]
                    raise ProgramError(
                        f"pipeline.stages[{by_name[name]}].inputs.{field}",
                        f"stages form a cycle: {' -> '.join(loop)} (each takes an output of the next)",
                    )
                if source.stage not in state:
                    visit(source.stage)
            path.pop()
            state[name] = 2

        for stage in self.stages:
            if stage.name not in state:
                visit(stage.name)

    def _check_outputs(self, by_name: Mapping[str, int]) -> None:
        if not self.outputs:
            raise ProgramError(
                "pipeline.outputs", "name at least one program output (field -> <stage>.<field>)"
            )
        if len(self.outputs) > MAX_OUTPUTS:
            raise ProgramError("pipeline.outputs", f"at most {MAX_OUTPUTS} outputs, got {len(self.outputs)}")
        inputs = set(self.program_inputs())
        for name, text in self.outputs:
            if not is_identifier(name) or name.startswith("_"):
                raise ProgramError(
                    "pipeline.outputs", f"{shown(name)} is not a field name (a Python identifier)"
                )
            where = f"pipeline.outputs.{name}"
            if name in inputs:
                raise ProgramError(where, f"{name!r} is also a program input (input.{name}): rename one")
            source = parse_source(text)
            if source is None or not source.stage:
                raise ProgramError(
                    where, f"{shown(text)}: a program output comes from a stage: <stage>.<field>"
                )
            if source.stage not in by_name:
                raise ProgramError(
                    where,
                    f"unknown source {shown(text)}: there is no stage {source.stage!r} "
                    f"(stages: {', '.join(by_name)})",
                )
            producer = self.stages[by_name[source.stage]]
            if source.field not in (*producer.output_fields(), *producer.extra_outputs()):
                raise ProgramError(
                    where,
                    f"unknown source {shown(text)}: stage {source.stage!r} has no output {source.field!r} "
                    f"(its outputs: {', '.join(producer.output_fields())})",
                )

    def _check_every_output_used(self) -> None:
        used = {
            str(source)
            for text in [t for s in self.stages for _, t in s.inputs] + [t for _, t in self.outputs]
            if (source := parse_source(text)) is not None
        }
        for i, stage in enumerate(self.stages):
            for field in stage.output_fields():
                if f"{stage.name}.{field}" not in used:
                    raise ProgramError(
                        f"pipeline.stages[{i}].signature",
                        f"output {field!r} of stage {stage.name!r} is used by nothing: wire it into another "
                        "stage's inputs or name it in pipeline.outputs (or drop it from the signature)",
                    )

    # ---------------------------------------------------------------- as JSON

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [s.to_dict() for s in self.stages], "outputs": dict(self.outputs)}

    @classmethod
    def from_dict(cls, d: Any) -> PipelineSpec:
        if not isinstance(d, dict) or set(d) - {"stages", "outputs"}:
            raise ProgramError("pipeline", "must be a JSON object with stages and outputs")
        stages = d.get("stages", [])
        if not isinstance(stages, list):
            raise ProgramError("pipeline.stages", "must be a list")
        if len(stages) > MAX_STAGES:
            raise ProgramError("pipeline.stages", f"at most {MAX_STAGES} stages, got {len(stages)}")
        outputs = d.get("outputs", {})
        if not isinstance(outputs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in outputs.items()
        ):
            raise ProgramError("pipeline.outputs", "must map output fields to <stage>.<field>")
        return cls(
            stages=tuple(StageSpec.from_dict(s, f"pipeline.stages[{i}]") for i, s in enumerate(stages)),
            outputs=tuple(sorted(outputs.items())),
        )


def _dependencies(stage: StageSpec) -> set[str]:
    return {s.stage for _, t in stage.inputs if (s := parse_source(t)) is not None and s.stage}


class PipelineModule(dspy.Module):  # type: ignore[misc]  # dspy is untyped
    """The pipeline as a ``dspy.Module``: each stage's module is the attribute of its name."""

    def __init__(self, pipeline: PipelineSpec, stages: Mapping[str, dspy.Module]) -> None:
        super().__init__()
        # underscored, so no stage name (never '_'-prefixed) can shadow them; not modules,
        # so DSPy's parameter walk passes them by
        self._pipeline = pipeline
        self._order = tuple(stage.name for stage in pipeline.order())
        for stage in pipeline.stages:  # attribute order = predictor order in the saved state
            setattr(self, stage.name, stages[stage.name])

    def _program_inputs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        expected = self._pipeline.program_inputs()
        missing = [name for name in expected if name not in kwargs]
        unknown = [name for name in kwargs if name not in expected]
        if missing or unknown:
            raise ValueError(
                f"the pipeline takes {expected}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
            )
        return {f"{INPUT}.{name}": value for name, value in kwargs.items()}

    def _stage_args(self, stage: StageSpec, values: dict[str, Any]) -> dict[str, Any]:
        return {field: values[text] for field, text in stage.inputs}

    @staticmethod
    def _keep(stage: StageSpec, prediction: Any, values: dict[str, Any]) -> None:
        for field in (*stage.output_fields(), *stage.extra_outputs()):
            try:
                values[f"{stage.name}.{field}"] = prediction[field]
            except (KeyError, TypeError, AttributeError):
                if field in stage.output_fields():
                    raise ValueError(f"stage {stage.name!r} returned no {field!r}") from None

    def _result(self, values: dict[str, Any]) -> dspy.Prediction:
        return dspy.Prediction(
            **{name: values[text] for name, text in self._pipeline.outputs if text in values}
        )

    def forward(self, **kwargs: Any) -> dspy.Prediction:
        values = self._program_inputs(kwargs)
        for name in self._order:
            stage = self._pipeline.stage(name)
            self._keep(stage, getattr(self, name)(**self._stage_args(stage, values)), values)
        return self._result(values)

    async def aforward(self, **kwargs: Any) -> dspy.Prediction:
        values = self._program_inputs(kwargs)
        for name in self._order:
            stage = self._pipeline.stage(name)
            self._keep(stage, await acall(getattr(self, name), self._stage_args(stage, values)), values)
        return self._result(values)


__all__ = ["INPUT", "MAX_STAGES", "PipelineModule", "PipelineSpec", "Source", "parse_source"]
