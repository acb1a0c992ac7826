"""Request fields <-> the kernel's values: program specs, LM configs, examples.

Every problem is reported as INVALID_ARGUMENT naming the request field, e.g.
`trainset[3].fields: missing "label" (an output of the signature)`.
"""

from __future__ import annotations

from typing import Any

import dspy

from dspyops.connections import OFFLINE_ONLY, Connections, ResolvedLM
from dspyops.errors import InvalidArgument, PermissionDenied
from dspyops.lm import OFFLINE, LMConfig
from dspyops.programs import protos as programs_wire
from dspyops.programs.allowlist import check_allowed, parse_ref
from dspyops.programs.build import build_module
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.errors import ModuleNotAllowed, ProgramError
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.scrub import scrub

MAX_EXAMPLES = 5000  # per set; the gRPC message limit bounds the bytes (README: limits)
MAX_FIELD_CHARS = 20_000


def _field_error(prefix: str, exc: ValueError) -> InvalidArgument | PermissionDenied:
    """ValueError('signature: ...') from the kernel -> InvalidArgument('spec.signature', '...');
    code from a module the server does not allowlist -> PermissionDenied."""
    if isinstance(exc, ModuleNotAllowed):
        return PermissionDenied(f"{prefix}.{exc.field}", exc.problem)
    if isinstance(exc, ProgramError):
        return InvalidArgument(f"{prefix}.{exc.field}", exc.problem)
    name, sep, problem = str(exc).partition(": ")
    if sep and name.isidentifier():
        return InvalidArgument(f"{prefix}.{name}", problem)
    return InvalidArgument(prefix, str(exc))


def spec_from_proto(
    spec: pb.ProgramSpec, field: str = "spec", ctx: ProgramContext = NO_CONTEXT
) -> ProgramSpec:
    """The request's spec, checked and, unless it is one predictor, built with the server's
    ``ctx`` (user code imported from allowlisted modules only, tools resolved, corpora looked
    up): a spec that cannot make a program is refused before anything is appended or an LM
    called. A user module from a module not on the allowlist is refused first, whatever else
    the spec says."""
    result = programs_wire.spec_from_proto(spec)
    try:
        if result.is_user_module:
            check_allowed(parse_ref(result.module, "module", "class"), ctx, "module")
        result.validate()
        if not result.is_predictor:
            build_module(result, ctx)
    except ValueError as exc:
        raise _field_error(field, exc) from None
    return result


def program_error(field: str, exc: ValueError) -> InvalidArgument | PermissionDenied:
    """A kernel ProgramError raised while building a request's program, naming ``field``."""
    return _field_error(field, exc)


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
    return programs_wire.spec_to_proto(spec)


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
        if not keys:  # a user module declares no fields: its examples say which are inputs
            raise InvalidArgument(
                f"{where}.input_keys",
                "name the example's inputs (a user module takes its examples' input_keys)",
            )
        unknown = [k for k in keys if k not in fields]
        if unknown:
            raise InvalidArgument(f"{where}.input_keys", f"{unknown} are not fields of the example")
        result.append(dspy.Example(**fields).with_inputs(*keys))
    return result
