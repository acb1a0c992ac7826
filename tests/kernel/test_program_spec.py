"""ProgramSpec's three kinds: checks on their own, to_dict and the protobuf round trip."""

from __future__ import annotations

import json

import pytest

from dspyops.artifacts import canonical_json, sha256_hex
from dspyops.programs.errors import ProgramError
from dspyops.programs.pipeline import PipelineSpec
from dspyops.programs.protos import spec_from_proto, spec_to_proto
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.stages import StageSpec
from dspyops.proto import events_pb2 as pb

TWO_STAGES = PipelineSpec(
    stages=(
        StageSpec("analyze", "ChainOfThought", "text -> topic", "Name the topic.", (("text", "input.text"),)),
        StageSpec(
            "answer",
            "Predict",
            "text, topic -> label",
            "",
            (("text", "input.text"), ("topic", "analyze.topic")),
        ),
    ),
    outputs=(("label", "answer.label"),),
)


def test_one_predictor_to_dict_is_what_it_was() -> None:
    # the digest of an artifact registered before pipelines existed depends on these bytes
    spec = ProgramSpec("Predict", "text -> label", "Classify.")
    assert (
        canonical_json(spec.to_dict())
        == b'{"instructions":"Classify.","module":"Predict","signature":"text -> label"}'
    )
    assert sha256_hex(canonical_json(spec.to_dict())) == sha256_hex(
        json.dumps(
            {"module": "Predict", "signature": "text -> label", "instructions": "Classify."},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    )


@pytest.mark.parametrize(
    "spec",
    [
        ProgramSpec("ChainOfThought", "question -> answer", "Answer."),
        ProgramSpec("Pipeline", pipeline=TWO_STAGES),
        ProgramSpec("tests.programs_pkg.modules:TwoStep", init_args='{"hint":"x","n":2}'),
        ProgramSpec("Predict", "text -> label", wrapper="KNNFewShot"),
    ],
)
def test_proto_and_dict_round_trip(spec: ProgramSpec) -> None:
    spec.validate()
    wire = pb.ProgramSpec.FromString(spec_to_proto(spec).SerializeToString())
    assert spec_from_proto(wire) == spec
    assert ProgramSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_init_args_canonical_through_the_wire() -> None:
    spec = spec_from_proto(pb.ProgramSpec(module="pkg.mod:Cls", init_args='{ "n": 2,  "a": [1] }'))
    assert spec.init_args == '{"a":[1],"n":2}'
    assert spec.init_kwargs() == {"a": [1], "n": 2}


def test_pipeline_fields() -> None:
    spec = ProgramSpec("Pipeline", pipeline=TWO_STAGES)
    assert spec.input_fields() == ["text"]
    assert spec.output_fields() == ["label"]


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        (ProgramSpec("Pipeline"), "pipeline", "needs a pipeline"),
        (ProgramSpec("Pipeline", "a -> b", pipeline=TWO_STAGES), "signature", "takes no signature"),
        (ProgramSpec("Predict", "a -> b", pipeline=TWO_STAGES), "pipeline", "only module 'Pipeline'"),
        (ProgramSpec("Predict", "a -> b", init_args="{}"), "init_args", "only a user module"),
        (ProgramSpec("pkg.mod:Cls", init_args="[1]"), "init_args", "JSON object"),
        (ProgramSpec("pkg.mod:Cls", init_args="{nope"), "init_args", "not JSON"),
        (ProgramSpec("pkg.mod:Cls", init_args="[" * 100 + "]" * 100), "init_args", "deeper"),
        (ProgramSpec("pkg.mod:a.b"), "module", "package.module:Class"),
        (ProgramSpec("pkg..mod:Cls"), "module", "package.module:Class"),
        (ProgramSpec("Predict", "a -> b", wrapper="Bagging"), "wrapper", "unknown wrapper"),
    ],
)
def test_validate_names_the_field(spec: ProgramSpec, field: str, fragment: str) -> None:
    with pytest.raises(ProgramError) as err:
        spec.validate()
    assert err.value.field == field
    assert fragment in err.value.problem
