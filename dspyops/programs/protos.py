"""``ProgramSpec`` <-> its protobuf message (``dspyops.v1.ProgramSpec``), both ways.

The message's maps (stage inputs, pipeline outputs) become sorted tuples, so a spec that
went through the wire is equal to, and hashes like, the one that was sent. ``init_args``
is kept canonical (sorted keys, no whitespace) once it parses, so two spellings of the
same arguments make the same artifact. Nothing is checked here: ``ProgramSpec.validate``
and ``build_module`` do that.
"""

from __future__ import annotations

import json

from dspyops.jsondepth import MAX_JSON_DEPTH, json_depth
from dspyops.programs.pipeline import PipelineSpec
from dspyops.programs.spec import MAX_INIT_ARGS_CHARS, PIPELINE, ProgramSpec
from dspyops.programs.stages import StageSpec
from dspyops.proto import events_pb2 as pb


def _canonical_init_args(text: str) -> str:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text  # validate() reports it
    if not isinstance(value, dict):
        return text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stage_from_proto(stage: pb.Stage) -> StageSpec:
    return StageSpec(
        name=stage.name,
        kind=stage.kind,
        signature=stage.signature,
        instructions=stage.instructions,
        inputs=tuple(sorted(stage.inputs.items())),
        tools=tuple(stage.tools),
        max_iters=stage.max_iters,
        tool_timeout_seconds=stage.tool_timeout_seconds,
        corpus=stage.corpus,
        k=stage.k,
    )


def spec_from_proto(spec: pb.ProgramSpec) -> ProgramSpec:
    has_pipeline = spec.HasField("pipeline")
    pipeline = None
    if has_pipeline or spec.module == PIPELINE:
        pipeline = PipelineSpec(
            stages=tuple(stage_from_proto(s) for s in spec.pipeline.stages),
            outputs=tuple(sorted(spec.pipeline.outputs.items())),
        )
    init_args = spec.init_args
    if init_args and len(init_args) <= MAX_INIT_ARGS_CHARS and json_depth(init_args) <= MAX_JSON_DEPTH:
        init_args = _canonical_init_args(init_args)
    return ProgramSpec(
        module=spec.module or "Predict",
        signature=spec.signature,
        instructions=spec.instructions,
        pipeline=pipeline,
        init_args=init_args,
        wrapper=spec.wrapper,
    )


def stage_to_proto(stage: StageSpec) -> pb.Stage:
    return pb.Stage(
        name=stage.name,
        kind=stage.kind,
        signature=stage.signature,
        instructions=stage.instructions,
        inputs=dict(stage.inputs),
        tools=list(stage.tools),
        max_iters=stage.max_iters,
        tool_timeout_seconds=stage.tool_timeout_seconds,
        corpus=stage.corpus,
        k=stage.k,
    )


def spec_to_proto(spec: ProgramSpec) -> pb.ProgramSpec:
    message = pb.ProgramSpec(
        module=spec.module,
        signature=spec.signature,
        instructions=spec.instructions,
        init_args=spec.init_args,
        wrapper=spec.wrapper,
    )
    if spec.pipeline is not None:
        message.pipeline.CopyFrom(
            pb.Pipeline(
                stages=[stage_to_proto(s) for s in spec.pipeline.stages], outputs=dict(spec.pipeline.outputs)
            )
        )
    return message


__all__ = ["spec_from_proto", "spec_to_proto", "stage_from_proto", "stage_to_proto"]
