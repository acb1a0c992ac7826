"""Domain errors that carry the field they are about.

Command handlers raise these; the servers map each class to one gRPC status code, so a
client always gets a status naming the field and the problem, and nothing is appended.
"""

from __future__ import annotations

import grpc


class DspyopsError(Exception):
    """Base: `field` names the request field at fault ('' when none applies)."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class InvalidArgument(DspyopsError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DspyopsError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DspyopsError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(DspyopsError):
    """The caller may not use what it named (e.g. a model its LM connection does not allow)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class FailedPrecondition(DspyopsError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DspyopsError):
    """Optimistic concurrency lost: re-read and retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(DspyopsError):
    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(DspyopsError):
    """A server-wide or per-caller cap is reached (subscribers, evaluations): retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


SHOWN_CHARS = 100  # the most of a bad value an error message echoes


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as an error message may echo it: its repr, cut to ``limit`` characters with
    its length when longer. Every echo of user input goes through here, so a 5 MB name can
    never come back in a status (gRPC caps metadata far below that) or fill a log line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:limit]}... ({size} {'bytes' if isinstance(value, bytes) else 'characters'})"
