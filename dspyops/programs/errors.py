"""The errors a program spec, its wiring, its code or its saved state can raise.

Each names the spec field at fault (``signature``, ``pipeline.stages[2].inputs.context``,
``module``, ``state``) apart from the problem, so a server prefixes the request's field
(``spec.``) and passes the message on as it is: it holds nothing of the server, only the
(cut, ``errors.shown``) values it was given.
"""

from __future__ import annotations


class ProgramError(ValueError):
    """A spec or saved state that cannot make a program (INVALID_ARGUMENT in a request)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ModuleNotAllowed(ProgramError):
    """A spec names code from a module the server does not allowlist (--program-modules):
    PERMISSION_DENIED in a request. Nothing was imported."""
