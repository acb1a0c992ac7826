"""Version numbers of pipelines and user modules: a changed program shape is a major bump."""

from __future__ import annotations

from google.protobuf.json_format import MessageToDict

from dspyops.proto import events_pb2 as pb
from dspyops.state import ProgramState, VersionState
from optimizer_svc.registry.commands import next_version


def _pipeline(*names: str) -> pb.ProgramSpec:
    stages = [
        pb.Stage(name=n, kind="Predict", signature="text -> label", inputs={"text": "input.text"})
        for n in names
    ]
    return pb.ProgramSpec(
        module="Pipeline", pipeline=pb.Pipeline(stages=stages, outputs={"label": f"{names[-1]}.label"})
    )


def _program(spec: pb.ProgramSpec) -> ProgramState:
    version = VersionState(
        program="p",
        version="1.0.0",
        spec=MessageToDict(spec, preserving_proto_field_name=True),
        lm={},
        artifact_digest="0" * 64,
        status="development",
        lineage={},
        registered_position=1,
        registered_at_us=0,
    )
    return ProgramState(name="p", versions={"1.0.0": version})


def test_same_pipeline_is_a_minor_bump_another_is_major() -> None:
    program = _program(_pipeline("answer"))
    assert next_version(program, _pipeline("answer")) == "1.1.0"
    assert next_version(program, _pipeline("classify")) == "2.0.0"


def test_another_user_class_is_major() -> None:
    program = _program(pb.ProgramSpec(module="pkg.mod:A"))
    assert next_version(program, pb.ProgramSpec(module="pkg.mod:A", init_args='{"k":1}')) == "1.1.0"
    assert next_version(program, pb.ProgramSpec(module="pkg.mod:B")) == "2.0.0"
