"""The optimizer registry: which optimizers and presets this service runs, how a request's
params are read and checked against them, and the ListOptimizers catalog.

``StartOptimizationRequest.preset`` names a preset (each family declares its own); the
request's own ``params`` override the preset's, and its ``optimizer`` must be empty or the
preset's. The merged params are then validated like any others, so a preset can never
smuggle in what a request could not ask for.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import NULL_VALUE, Struct, Value

from dspyops.jsondepth import MAX_JSON_DEPTH
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.optimizers.base import InvalidOptimizerParams, OptimizerAdapter, ParamSpec, Preset
from optimizer_svc.optimizers.better_together import BETTER_TOGETHER
from optimizer_svc.optimizers.bootstrap import BOOTSTRAP, LABELED, OPTUNA, RANDOM_SEARCH
from optimizer_svc.optimizers.copro import COPRO_ADAPTER
from optimizer_svc.optimizers.ensemble import ENSEMBLE
from optimizer_svc.optimizers.gepa import GEPA_ADAPTER
from optimizer_svc.optimizers.infer_rules import INFER_RULES
from optimizer_svc.optimizers.knn import KNN
from optimizer_svc.optimizers.mipro import MIPRO
from optimizer_svc.optimizers.simba import SIMBA_ADAPTER

# in this order in errors and in ListOptimizers
OPTIMIZERS: dict[str, OptimizerAdapter] = {
    a.name: a
    for a in (
        LABELED,
        BOOTSTRAP,
        RANDOM_SEARCH,
        MIPRO,
        COPRO_ADAPTER,
        GEPA_ADAPTER,
        SIMBA_ADAPTER,
        KNN,
        INFER_RULES,
        OPTUNA,
        ENSEMBLE,
        BETTER_TOGETHER,
    )
}
PRESETS: dict[str, Preset] = {p.name: p for a in OPTIMIZERS.values() for p in a.presets}


def get_adapter(optimizer: str) -> OptimizerAdapter:
    adapter = OPTIMIZERS.get(optimizer) if isinstance(optimizer, str) else None
    if adapter is None:
        shown = f'"{optimizer}"' if isinstance(optimizer, str) else type(optimizer).__name__
        raise InvalidOptimizerParams("optimizer", f"unknown {shown}; known: {', '.join(OPTIMIZERS)}")
    return adapter


def params_from_struct(params: Struct) -> dict[str, Any]:
    """A request's params Struct as plain Python values, NaN and infinities kept as floats.

    ``json_format.MessageToDict`` refuses NaN/inf (they are not JSON) with a ValueError that
    became INTERNAL; a JSON client can still send them (``Value.number_value``). Kept as
    floats, ``validate_params`` refuses them naming the parameter. Protobuf bounds a Struct's
    nesting when it decodes the request (about 30 levels), below ``MAX_JSON_DEPTH``; the walk
    checks it anyway, with an explicit stack rather than recursion.
    """
    result: dict[str, Any] = {}
    stack: list[tuple[Any, Any, str, int]] = [(params, result, "params", 1)]
    while stack:
        message, into, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidOptimizerParams(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
        items = message.fields.items() if isinstance(message, Struct) else enumerate(message.values)
        for key, value in items:
            kind = value.WhichOneof("kind")
            path = f"{where}.{key}" if isinstance(message, Struct) else f"{where}[{key}]"
            converted: Any
            if kind == "struct_value":
                converted = {}
                stack.append((value.struct_value, converted, path, depth + 1))
            elif kind == "list_value":
                converted = [None] * len(value.list_value.values)
                stack.append((value.list_value, converted, path, depth + 1))
            else:
                converted = None if kind in (None, "null_value") else getattr(value, kind)
            into[key] = converted
    return result


def validate_params(optimizer: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Normalized params (defaults filled in, integral floats made ints); raises InvalidOptimizerParams."""
    return get_adapter(optimizer).validate(params)


def resolve_preset(preset: str, optimizer: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
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
    """Every preset must validate, for the optimizer that declares it: a broken preset is a
    bug caught at import, not at request time."""
    for adapter in OPTIMIZERS.values():
        for preset in adapter.presets:
            if preset.optimizer != adapter.name:
                raise ValueError(f"preset {preset.name} runs {preset.optimizer}, not {adapter.name}")
            validate_params(preset.optimizer, preset.params)
    if len(PRESETS) != sum(len(a.presets) for a in OPTIMIZERS.values()):
        raise ValueError("two presets share a name")


_check_presets()
