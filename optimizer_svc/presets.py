"""Named presets: documented (optimizer, params) pairs a request can name instead of spelling out.

``StartOptimizationRequest.preset`` picks one; the request's own ``params`` override the
preset's, and its ``optimizer`` must be empty or the preset's. The merged params are then
validated like any others, so a preset can never smuggle in what a request could not ask for.

Also builds the ``ListOptimizers`` answer: every adapter's parameter schema and the presets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import NULL_VALUE, Struct, Value

from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.optimizers import (
    OPTIMIZERS,
    InvalidOptimizerParams,
    OptimizerAdapter,
    ParamSpec,
    get_adapter,
    validate_params,
)


@dataclass(frozen=True)
class Preset:
    name: str
    optimizer: str
    params: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "quick-bootstrap",
            "BootstrapFewShot",
            {"max_bootstrapped_demos": 4, "max_labeled_demos": 8},
            "Seconds, one pass: up to 4 bootstrapped and 8 labeled demos; no valset needed.",
        ),
        Preset(
            "balanced-mipro",
            "MIPROv2",
            {"auto": "light", "max_bootstrapped_demos": 4, "max_labeled_demos": 4},
            "MIPROv2's light run: instructions and demo sets searched jointly in about 10 trials.",
        ),
        Preset(
            "thorough-mipro",
            "MIPROv2",
            {"auto": "medium", "max_bootstrapped_demos": 4, "max_labeled_demos": 8},
            "MIPROv2's medium run: more candidates and trials, a larger validation sample.",
        ),
        Preset(
            "gepa-light",
            "GEPA",
            {"auto": "light", "reflection_minibatch_size": 3},
            "GEPA's light budget: reflective instruction evolution; give it a prompt_lm that writes well.",
        ),
    )
}


def resolve(preset: str, optimizer: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(optimizer, merged params) for a request naming ``preset``; InvalidOptimizerParams names the field."""
    found = PRESETS.get(preset)
    if found is None:
        raise InvalidOptimizerParams("preset", f'unknown "{preset[:40]}"; known: {", ".join(PRESETS)}')
    if optimizer and optimizer != found.optimizer:
        raise InvalidOptimizerParams(
            "optimizer",
            f'preset "{found.name}" runs {found.optimizer}, not "{optimizer[:40]}" (leave optimizer empty)',
        )
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidOptimizerParams("params", f"must be an object, got {type(params).__name__}")
    adapter = get_adapter(found.optimizer)
    merged = dict(found.params)
    if "auto" not in params and any(params.get(name) is not None for name in adapter.replaces_auto):
        merged.pop("auto", None)  # the request asks for a manual budget: the preset's auto goes
    merged.update(params)
    return found.optimizer, merged


# --------------------------------------------------------------------------------------
# ListOptimizers
# --------------------------------------------------------------------------------------

_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "string"}


def _value(x: Any) -> Value:
    if x is None:
        return Value(null_value=NULL_VALUE)
    if isinstance(x, bool):
        return Value(bool_value=x)
    if isinstance(x, int | float):
        return Value(number_value=float(x))
    return Value(string_value=str(x))


def param_proto(spec: ParamSpec) -> opb.OptimizerParam:
    message = opb.OptimizerParam(
        name=spec.name,
        type=_TYPE_NAMES[spec.type],
        nullable=spec.nullable,
        doc=spec.doc,
        allowed=spec.describe_range() + (", or null" if spec.nullable else ""),
        choices=list(spec.choices or ()),
    )
    message.default.CopyFrom(_value(spec.default))
    if spec.minimum is not None and math.isfinite(spec.minimum):
        message.minimum = float(spec.minimum)
    if spec.maximum is not None and math.isfinite(spec.maximum):
        message.maximum = float(spec.maximum)
    return message


def optimizer_proto(adapter: OptimizerAdapter) -> opb.OptimizerInfo:
    return opb.OptimizerInfo(
        name=adapter.name,
        doc=adapter.doc,
        params=[param_proto(p) for p in adapter.params],
        needs_valset=adapter.needs_valset,
        needs_teacher=adapter.needs_teacher,
        uses_prompt_lm=bool(adapter.prompt_lm_role),
        prompt_lm_role=adapter.prompt_lm_role,
        rules=adapter.rules,
    )


def preset_proto(preset: Preset) -> opb.OptimizerPreset:
    params = Struct()
    ParseDict(preset.params, params)
    return opb.OptimizerPreset(name=preset.name, optimizer=preset.optimizer, params=params, doc=preset.doc)


def catalog() -> opb.ListOptimizersResponse:
    return opb.ListOptimizersResponse(
        optimizers=[optimizer_proto(a) for a in OPTIMIZERS.values()],
        presets=[preset_proto(p) for p in PRESETS.values()],
    )


def _check_presets() -> None:
    """Every preset must validate: a broken preset is a bug caught at import, not at request time."""
    for preset in PRESETS.values():
        validate_params(preset.optimizer, preset.params)


_check_presets()
