"""Datasets by reference: JSONL or CSV files under a server's datasets directory.

A request names a file relative to the directory the server was started with
(``DatasetRef.path``) instead of carrying its examples inline. The path is checked before
anything is read: no absolute paths, no ``..``, no way out through a symlink, only
``.jsonl`` and ``.csv``. Every row must hold every field of the program's signature; the
inputs are ``DatasetRef.input_keys`` or, by default, the signature's inputs.

Every problem is a ``dspyops.errors`` error naming the request field: ``<field>.path`` for
the file and its rows, ``<field>.input_keys`` for the keys; a server without a datasets
directory refuses any reference with FAILED_PRECONDITION.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import dspy

from dspyops.errors import SHOWN_CHARS, FailedPrecondition, InvalidArgument, shown
from dspyops.jsondepth import MAX_JSON_DEPTH, too_deep
from dspyops.programs.spec import ProgramSpec

EXTENSIONS = (".jsonl", ".csv")
MAX_ROWS = 100_000
MAX_FIELD_CHARS = 20_000
MAX_FILE_BYTES = 256 * 1024 * 1024


class DatasetRefLike(Protocol):
    """What is read of a DatasetRef message (read-only, so the message's repeated field fits)."""

    @property
    def path(self) -> str: ...

    @property
    def input_keys(self) -> Sequence[str]: ...


def check_ref_path(data_dir: Path | None, path: str, field: str) -> Path:
    """The file ``path`` names under ``data_dir``, or the error naming ``<field>.path``."""
    where = f"{field}.path"
    if data_dir is None:
        raise FailedPrecondition(
            field, "this server has no datasets directory (start it with --datasets-dir)"
        )
    if not path:
        raise InvalidArgument(where, "is required")
    if "\\" in path or "\x00" in path:
        raise InvalidArgument(where, f"{shown(path)}: use '/' as the separator")
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        raise InvalidArgument(where, f"{shown(path)}: must be relative to the datasets directory")
    if ".." in pure.parts:
        raise InvalidArgument(where, f"{shown(path)}: '..' is not allowed")
    if pure.suffix.lower() not in EXTENSIONS:
        raise InvalidArgument(where, f"{shown(path)}: expected a .jsonl or .csv file")
    root = data_dir.resolve()
    resolved = (root / pure).resolve()
    if not resolved.is_relative_to(root):
        raise InvalidArgument(where, f"{shown(path)}: leads outside the datasets directory")
    if not resolved.is_file():
        raise InvalidArgument(where, f"{shown(path)}: no such file in the datasets directory")
    if resolved.stat().st_size > MAX_FILE_BYTES:
        raise InvalidArgument(where, f"{shown(path)}: larger than {MAX_FILE_BYTES} bytes")
    return resolved


def read_rows(file: Path, label: str, where: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of every row of a JSONL or CSV file (checked by check_ref_path);
    problems are InvalidArgument naming ``where`` and the file as ``label``."""
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with file.open(encoding="utf-8", newline="") as fh:
            if file.suffix.lower() == ".csv":
                reader = csv.DictReader(fh)
                if not reader.fieldnames:
                    raise InvalidArgument(where, f"{label}: no header row")
                for row in reader:
                    if None in row:  # more cells than header names
                        raise InvalidArgument(where, f"{label}:{reader.line_num}: more cells than columns")
                    if any(v is None for v in row.values()):
                        raise InvalidArgument(where, f"{label}:{reader.line_num}: fewer cells than columns")
                    rows.append((reader.line_num, dict(row)))
                    if len(rows) > MAX_ROWS:
                        raise InvalidArgument(where, f"{label}: more than {MAX_ROWS} rows")
            else:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    if too_deep(line):  # json.loads would recurse into it (RecursionError)
                        problem = f"{label}:{lineno}: nested deeper than {MAX_JSON_DEPTH} levels"
                        raise InvalidArgument(where, problem)
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        if not rows and _looks_like_csv_header(line):
                            problem = f"{label}:{lineno}: not JSON: this looks like a CSV header (use .csv)"
                            raise InvalidArgument(where, problem) from None
                        raise InvalidArgument(where, f"{label}:{lineno}: not JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise InvalidArgument(where, f"{label}:{lineno}: expected a JSON object")
                    rows.append((lineno, row))
                    if len(rows) > MAX_ROWS:
                        raise InvalidArgument(where, f"{label}: more than {MAX_ROWS} rows")
    except UnicodeDecodeError:
        raise InvalidArgument(where, f"{label}: not UTF-8 text") from None
    except csv.Error as exc:
        raise InvalidArgument(where, f"{label}: not CSV ({exc})") from None
    return rows


def _looks_like_csv_header(line: str) -> bool:
    """A first line such as ``text,label``: names split by a delimiter, no JSON brackets."""
    text = line.strip()
    if text[:1] in '{["':
        return False
    try:
        dialect = csv.Sniffer().sniff(text, delimiters=",;\t")
    except csv.Error:
        return False
    names = next(csv.reader([text], dialect))
    return len(names) >= 2 and all(name.strip() for name in names)


def resolve_dataset_ref(
    data_dir: Path | None, ref: DatasetRefLike, spec: ProgramSpec, field: str
) -> list[dspy.Example]:
    """Read the examples ``ref`` names; raise InvalidArgument/FailedPrecondition naming ``field``."""
    file = check_ref_path(data_dir, ref.path, field)
    where = f"{field}.path"
    label = ref.path if len(ref.path) <= SHOWN_CHARS else shown(ref.path)  # as errors echo it
    inputs, outputs = spec.input_fields(), spec.output_fields()
    keys = list(ref.input_keys) or inputs
    if not keys:  # a user module declares no fields: the ref says which columns are inputs
        raise InvalidArgument(
            f"{field}.input_keys", "name the inputs (a user module takes its examples' input_keys)"
        )
    examples: list[dspy.Example] = []
    for lineno, row in read_rows(file, label, where):
        for name in (*inputs, *outputs):
            if name not in row:
                role = "input" if name in inputs else "output"
                problem = f"{label}:{lineno}: missing {shown(name)} (an {role} of the signature)"
                raise InvalidArgument(where, problem)
        fields: dict[str, str] = {}
        for name, value in row.items():
            if isinstance(value, dict | list):
                raise InvalidArgument(
                    where, f"{label}:{lineno}: {shown(name)} must be a string, number or bool"
                )
            text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
            if len(text) > MAX_FIELD_CHARS:
                problem = f"{label}:{lineno}: {shown(name)} is longer than {MAX_FIELD_CHARS} characters"
                raise InvalidArgument(where, problem)
            fields[str(name)] = text
        unknown = [k for k in keys if k not in fields]
        if unknown:
            problem = f"{unknown} are not columns of {label} (line {lineno})"
            raise InvalidArgument(f"{field}.input_keys", problem)
        examples.append(dspy.Example(**fields).with_inputs(*keys))
    if not examples:
        raise InvalidArgument(where, f"{label}: holds no examples")
    return examples


__all__ = ["EXTENSIONS", "check_ref_path", "read_rows", "resolve_dataset_ref"]
