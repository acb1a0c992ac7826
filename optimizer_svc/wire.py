"""Request fields <-> the kernel's values: program specs, LM configs, examples.

Every problem is reported as INVALID_ARGUMENT naming the request field, e.g.
`trainset[3].fields: missing "label" (an output of the signature)`.
"""

from __future__ import annotations

from typing import Any

import dspy

from dspyops.connections import OFFLINE_ONLY, Connections, ResolvedLM
from dspyops.errors import InvalidArgument
from dspyops.lm import OFFLINE, LMConfig
from dspyops.programs import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.scrub import scrub

MAX_EXAMPLES = 5000  # per set; the gRPC message limit bounds the bytes (README: limits)
MAX_FIELD_CHARS = 20_000


def _field_error(prefix: str, exc: ValueError) -> InvalidArgument:
    """ValueError('signature: ...') from the kernel -> InvalidArgument('spec.signature', '...')."""
    name, sep, problem = str(exc).partition(": ")
    if sep and name.isidentifier():
        return InvalidArgument(f"{prefix}.{name}", problem)
    return InvalidArgument(prefix, str(exc))


def spec_from_proto(spec: pb.ProgramSpec, field: str = "spec") -> ProgramSpec:
    result = ProgramSpec(
        module=spec.module or "Predict",
        signature=spec.signature,
        instructions=spec.instructions,
        wrapper=spec.wrapper,  # an exported KNNFewShot / Ensemble version's, evaluated or imported
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
    return pb.ProgramSpec(
        module=spec.module, signature=spec.signature, instructions=spec.instructions, wrapper=spec.wrapper
    )


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
