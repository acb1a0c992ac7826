"""Code a spec names (``package.module:Name``), imported only from allowlisted modules.

Like custom metrics, a user module class and a ReAct tool are named by a module and an
attribute. The module must be on the server's allowlist (``--program-modules``, exact dotted
names) before anything is imported: a module not on it is never imported, and the request is
refused naming the module and the allowlist. The attribute is looked up with one ``getattr``
on the imported module; the rest of the text is never walked (no dots after the colon).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from dspyops.errors import shown
from dspyops.programs.context import MODULE_NAME, ProgramContext
from dspyops.programs.errors import ModuleNotAllowed, ProgramError

# a public name: no "_private" or "__dunder__" attribute of an allowlisted module is reachable
_ATTRIBUTE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_REF_CHARS: Final = 300


@dataclass(frozen=True)
class CodeRef:
    """``module:attribute`` as given (parsed, nothing imported)."""

    module: str
    attribute: str

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute}"


def is_code_ref(text: str) -> bool:
    return isinstance(text, str) and ":" in text


def parse_ref(text: str, field: str, what: str) -> CodeRef:
    """``what`` says what the text names ("class", "function") in an error."""
    if not isinstance(text, str) or len(text) > MAX_REF_CHARS:
        raise ProgramError(field, f"{shown(text)} is not of the form package.module:{what.title()}")
    module, colon, attribute = text.partition(":")
    if not colon or not MODULE_NAME.fullmatch(module) or not _ATTRIBUTE.fullmatch(attribute):
        raise ProgramError(
            field,
            f"{shown(text)} is not of the form package.module:{what.title()} (a module path and a name)",
        )
    return CodeRef(module, attribute)


def check_allowed(ref: CodeRef, ctx: ProgramContext, field: str) -> None:
    if ref.module not in ctx.program_modules:
        raise ModuleNotAllowed(
            field,
            f"module {shown(ref.module)} is not allowlisted for programs "
            f"(this server's --program-modules: {ctx.allowlist_text()})",
        )


def import_allowed(ref: CodeRef, ctx: ProgramContext, field: str) -> ModuleType:
    """The module of ``ref``, imported only when it is on the allowlist."""
    check_allowed(ref, ctx, field)
    try:
        return importlib.import_module(ref.module)
    except Exception as exc:  # an allowlisted module that fails to import: the operator's problem
        raise ProgramError(
            field, f"cannot import {ref.module!r}: {type(exc).__name__}: {shown(str(exc))}"
        ) from None


def resolve(ref: CodeRef, ctx: ProgramContext, field: str) -> Any:
    """The attribute ``ref`` names, or None when its module has no such attribute."""
    module = import_allowed(ref, ctx, field)
    return getattr(module, ref.attribute, None)


__all__ = ["CodeRef", "check_allowed", "import_allowed", "is_code_ref", "parse_ref", "resolve"]
