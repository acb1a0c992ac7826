"""Validation of the names users give programs, deployments, aliases and versions.

Names end up in stream ids and file paths, so path separators, control characters and
whitespace are refused up front rather than escaped later. Every pattern is applied with
``fullmatch``: ``$`` also matches before a final newline, so ``re.match(r"^...$")`` let
``"web\n"`` through.
"""

from __future__ import annotations

import re

from dspyops.errors import InvalidArgument, shown

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


def check_name(field: str, value: str) -> str:
    """Return `value` if it is a valid resource name, else raise InvalidArgument naming `field`."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not _NAME.fullmatch(value) or ".." in value:
        raise InvalidArgument(
            field,
            f"{shown(value)} is not a valid name: use 1-63 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return value


def check_alias(field: str, value: str) -> str:
    """Aliases are names, written with or without a leading '@'; returns the bare name."""
    return check_name(field, value.removeprefix("@"))


def parse_semver(field: str, value: str) -> tuple[int, int, int]:
    match = _SEMVER.fullmatch(value or "")
    if not match:
        raise InvalidArgument(field, f"{shown(value)} is not a semantic version like 1.2.0")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


def program_stream(program: str) -> str:
    return f"program-{program}"


def deployment_stream(deployment: str) -> str:
    return f"deployment-{deployment}"


def job_stream(job_id: str) -> str:
    return f"job-{job_id}"


def corpus_stream(corpus: str) -> str:
    return f"corpus-{corpus}"
