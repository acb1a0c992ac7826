"""Values that used to make the optimizer answer INTERNAL: NaN and infinite optimizer params
(a JSON client can send them as Value.number_value; json_format refused them with a
ValueError), and JSON nested deep enough that json.loads raised RecursionError (state_json
of ImportProgram and Evaluate, a line of a dataset file). Each is INVALID_ARGUMENT naming
the field, appends nothing, and the server keeps serving."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from dspyops.client import OptimizerClient
from dspyops.jsondepth import MAX_JSON_DEPTH, json_depth, too_deep
from dspyops.proto import events_pb2 as pb
from optimizer_svc.optimizers.registry import params_from_struct
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()[:12]
SIG = "text -> label"


@dataclass
class Stack:
    opt: OptimizerClient
    data: Path
    state_json: bytes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("bad-values")
    data = tmp / "datasets"
    data.mkdir()
    config = OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data", datasets_dir=data)
    server = ServerThread(lambda: start(config))
    with OptimizerClient(server.address) as opt:
        done = list(opt.start_optimization("tickets", SIG, trainset=ROWS, optimizer="LabeledFewShot"))
        assert done[-1].WhichOneof("kind") == "completed"
        yield Stack(opt, data, opt.export_version("tickets", "1.0.0").state_json)
    server.stop()


def refused(stack: Stack, call: Callable[[], object], field: str, *fragments: str) -> None:
    head = stack.opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        call()
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.value.code(), details)
    assert details.startswith(f"{field}:"), details
    for fragment in fragments:
        assert fragment in details, details
    assert stack.opt.read_log(0, 1).head == head  # nothing appended
    assert stack.opt.list_programs().programs  # still serving


def start_with(
    stack: Stack, params: dict, optimizer: str = "LabeledFewShot", preset: str = ""
) -> Callable[[], object]:
    return lambda: list(
        stack.opt.start_optimization(
            "tickets", SIG, optimizer=optimizer, preset=preset, trainset=ROWS, params=params
        )
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("optimizer", "preset", "name"),
    [
        ("LabeledFewShot", "", "k"),  # an integer param
        ("KNNFewShot", "", "k"),
        ("BootstrapFewShot", "", "metric_threshold"),  # a nullable float param
        ("", "quick-bootstrap", "max_labeled_demos"),  # overriding a preset's value
    ],
)
def test_non_finite_params_are_invalid_argument_naming_the_param(
    stack: Stack, value: float, optimizer: str, preset: str, name: str
) -> None:
    refused(stack, start_with(stack, {name: value}, optimizer, preset), f"params.{name}", "got")


def test_a_nested_param_value_is_named(stack: Stack) -> None:
    refused(stack, start_with(stack, {"k": {"deeper": [1, {"still": math.nan}]}}), "params.k", "got dict")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_state(depth: int) -> bytes:
    return b'{"predict": ' + nested(depth).encode() + b"}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deep_state_json_is_refused_by_import_and_evaluate(stack: Stack, depth: int) -> None:
    state = deep_state(depth)
    refused(
        stack, lambda: stack.opt.import_program("deep", SIG, state), "state_json", f"{MAX_JSON_DEPTH} levels"
    )
    spec = pb.ProgramSpec(module="Predict", signature=SIG)
    refused(
        stack,
        lambda: list(stack.opt.evaluate(spec=spec, state_json=state, dataset=ROWS[:2])),
        "state_json",
        f"{MAX_JSON_DEPTH} levels",
    )


def test_state_json_at_the_limit_passes_the_depth_check(stack: Stack) -> None:
    state = json.loads(stack.state_json)  # a Predict's state: {"demos": [{...}], ...}
    state["demos"][0]["text"] = json.loads(nested(MAX_JSON_DEPTH - 3))  # 64 levels in all
    data = json.dumps(state).encode()
    assert json_depth(data) == MAX_JSON_DEPTH
    try:
        stack.opt.import_program("at-limit", SIG, data)
    except grpc.RpcError as err:  # judged on its content, not on its depth
        assert "levels" not in (err.details() or ""), err.details()
    state["demos"][0]["text"] = json.loads(nested(MAX_JSON_DEPTH - 2))
    refused(
        stack,
        lambda: stack.opt.import_program("over", SIG, json.dumps(state).encode()),
        "state_json",
        "64 levels",
    )


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_a_deep_line_in_a_dataset_file_is_refused(stack: Stack, depth: int) -> None:
    lines = [json.dumps(row) for row in ROWS[:3]]
    lines.insert(1, '{"text": ' + nested(depth) + ', "label": "billing"}')
    (stack.data / f"deep-{depth}.jsonl").write_text("\n".join(lines) + "\n")
    where = f"deep-{depth}.jsonl:2"
    refused(
        stack,
        lambda: list(
            stack.opt.start_optimization(
                "tickets", SIG, optimizer="LabeledFewShot", trainset_ref=f"deep-{depth}.jsonl"
            )
        ),
        "trainset_ref.path",
        where,
        "64 levels",
    )
    refused(
        stack,
        lambda: list(stack.opt.evaluate("tickets", "1.0.0", dataset_ref=f"deep-{depth}.jsonl")),
        "dataset_ref.path",
        where,
        "64 levels",
    )


# ------------------------------------------------------------------ the measures themselves


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[["', 0),  # brackets inside strings do not count
        ('{"a": "\\"[[[", "b": [1, [2]]}', 3),  # nor after an escaped quote
        ("[]", 1),
        ("[[], [[]], {}]", 3),
        ('{"a": {"b": {"c": []}}}', 4),
        (nested(1_000_000), 1_000_000),
    ],
)
def test_json_depth(text: str, depth: int) -> None:
    assert json_depth(text) == depth
    assert json_depth(text.encode()) == depth
    assert too_deep(text) is (depth > MAX_JSON_DEPTH)


def test_params_from_struct_keeps_non_finite_numbers_and_types() -> None:
    struct = Struct()
    struct.update({"a": math.nan, "b": math.inf, "c": 3, "d": "x", "e": True, "f": None, "g": [1, {"h": 2}]})
    params = params_from_struct(struct)
    assert math.isnan(params["a"]) and params["b"] == math.inf
    assert params["c"] == 3.0 and isinstance(params["c"], float)
    assert params["d"] == "x" and params["e"] is True and params["f"] is None
    assert params["g"] == [1.0, {"h": 2.0}]
