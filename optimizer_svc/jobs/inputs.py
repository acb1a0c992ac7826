"""A job's example sets as JobAccepted carries them (``JobInputs.trainset`` / ``valset``),
so that any replica can run the job again from the log alone.

The bytes are one canonical JSON object per example (sorted keys, no spaces, UTF-8), each
followed by a newline: exactly the lines ``datasets.dataset_digest`` hashes, so
``sha256(JobInputs.trainset)`` is ``JobAccepted.trainset_digest`` and anyone holding the
log can check them. Which fields are inputs is ``JobInputs.input_keys``, one list for the
whole job (an example's own keys are not in its line, so that the digest stays the same).

A log is input too: decoding checks every example as a request's inline examples are
checked (the signature's fields present, string values within the length limit, the input
keys among the fields), with the error naming the ``inputs.*`` field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

import dspy

from dspyops.datasets import example_row
from dspyops.errors import InvalidArgument
from dspyops.limits import MAX_EVENT_PAYLOAD_BYTES
from dspyops.programs.spec import ProgramSpec
from optimizer_svc.wire import MAX_FIELD_CHARS

# A file-backed set (trainset_ref) may hold this many rows; a log holding more is not ours.
MAX_LOGGED_EXAMPLES: Final = 100_000


def encode_examples(examples: Sequence[dspy.Example]) -> bytes:
    """The canonical JSON lines of ``examples`` (their digest's input)."""
    return b"".join(
        json.dumps(example_row(e), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        for e in examples
    )


def shared_input_keys(sets: Sequence[tuple[str, Sequence[dspy.Example]]]) -> list[str]:
    """The input keys every example of the job takes (sorted: DSPy keeps them as a set).

    JobInputs has one list for the job, so examples that disagree are refused, naming the
    first that differs from the first example (requests and the CLI give one list for all)."""
    keys: frozenset[str] | None = None
    for field, examples in sets:
        for i, example in enumerate(examples):
            own = frozenset(example.inputs().keys())
            if keys is None:
                keys = own
            elif own != keys:
                raise InvalidArgument(
                    f"{field}[{i}].input_keys",
                    f"every example of a job takes the same inputs: {sorted(own)} here, "
                    f"{sorted(keys)} in the first",
                )
    return sorted(keys or ())


def decode_examples(
    data: bytes, spec: ProgramSpec, input_keys: Sequence[str], field: str
) -> list[dspy.Example]:
    """The examples of a JobInputs set, checked like a request's; InvalidArgument naming ``field``."""
    inputs, outputs = spec.input_fields(), spec.output_fields()
    keys = list(input_keys)
    if data and not keys:
        raise InvalidArgument("inputs.input_keys", "is empty: the examples' inputs are not on the record")
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise InvalidArgument(field, "is not UTF-8 text") from None
    if lines.pop() != "":
        raise InvalidArgument(field, "does not end with a newline (one JSON object per line)")
    if len(lines) > MAX_LOGGED_EXAMPLES:
        raise InvalidArgument(field, f"more than {MAX_LOGGED_EXAMPLES} examples")
    examples: list[dspy.Example] = []
    for i, line in enumerate(lines):
        where = f"{field}[{i}]"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(where, f"not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InvalidArgument(where, "expected a JSON object")
        for name in (*inputs, *outputs):
            if name not in row:
                role = "input" if name in inputs else "output"
                raise InvalidArgument(where, f"missing {name!r} (an {role} of the signature)")
        for name, value in row.items():
            if not isinstance(value, str):
                raise InvalidArgument(f"{where}.{name}", f"must be a string, got {type(value).__name__}")
            if len(value) > MAX_FIELD_CHARS:
                raise InvalidArgument(f"{where}.{name}", f"longer than {MAX_FIELD_CHARS} characters")
        unknown = [k for k in keys if k not in row]
        if unknown:
            raise InvalidArgument("inputs.input_keys", f"{unknown} are not fields of {where}")
        examples.append(dspy.Example(**row).with_inputs(*keys))
    return examples


def check_logged_size(size: int, train_bytes: int, val_bytes: int) -> None:
    """A JobAccepted of ``size`` bytes must fit one event; over it, the job is refused
    naming the sets (their bytes are most of it) before anything is appended."""
    if size > MAX_EVENT_PAYLOAD_BYTES:
        raise InvalidArgument(
            "trainset",
            f"the job's examples take {train_bytes + val_bytes:,} bytes as JSON (trainset "
            f"{train_bytes:,}, valset {val_bytes:,}); its JobAccepted event would be {size:,} bytes, "
            f"over the log's limit of {MAX_EVENT_PAYLOAD_BYTES:,} bytes per event",
        )


__all__ = ["check_logged_size", "decode_examples", "encode_examples", "shared_input_keys"]
