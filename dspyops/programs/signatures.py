"""Signature strings -> ``dspy.Signature``, over a closed set of types. Nothing is imported.

DSPy's own parser (``dspy.Signature("text: a.b -> label")``) resolves a name it does not
know by importing a module of that name and walking its attributes with ``getattr``. A
signature string from a request could therefore import any installed module (running its
import-time code), and DSPy's error messages echo the objects it found: ``os.environ``
came back as the server's whole environment.

Here the text is only *parsed*: the field list is split by a small scanner, and each
annotation goes through ``ast.parse(..., mode="eval")``, which builds a syntax tree and
evaluates nothing. The tree must be one of a few shapes naming one of a few types
(``SUPPORTED``); anything else is refused with a message naming the field and the
annotation (cut by ``errors.shown``), never an object of the server. The signature is then
built from typed fields with ``dspy.Signature({name: (type, InputField(...))}, instructions)``,
which is exactly what DSPy's parser builds for the same string: same field order,
annotations, ``json_schema_extra`` (prefixes, descriptions, ``IS_TYPE_UNDEFINED``) and
instructions (DSPy's default ones when none are given), so saved states still load and
the prompts DSPy's adapters write are byte-identical (tests/kernel/test_signatures.py).

DSPy has no parser that resolves only a closed set of names (``custom_types`` adds names,
it does not remove the import fallback), so this one is written by hand.
"""

from __future__ import annotations

import ast
import keyword
import typing
import unicodedata
from typing import Any, Final

import dspy
from dspy.utils.constants import IS_TYPE_UNDEFINED

from dspyops.errors import shown

MAX_SIGNATURE_CHARS: Final = 4000  # a 100-label Literal fits; the parser never sees more
MAX_FIELDS: Final = 100
MAX_ANNOTATION_DEPTH: Final = 8  # list[dict[str, list[int]]] is 3; Optional[...] adds one

SUPPORTED: Final = (
    "str, int, float, bool, Any, list[T], dict[K, V] (also List, Dict), "
    "Literal['a', 1, True, ...], Optional[T], Union[T, ...], T | None"
)

_PLAIN: Final[dict[str, Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
    "Any": typing.Any,
}
# name -> (the generic, how many type arguments it takes)
_GENERIC: Final[dict[str, tuple[Any, int]]] = {
    "list": (list, 1),
    "List": (typing.List, 1),  # noqa: UP006 - typing.List is what DSPy's parser gave for "List[str]"
    "dict": (dict, 2),
    "Dict": (typing.Dict, 2),  # noqa: UP006
}
_LITERAL_TYPES: Final = (str, int, bool, type(None))


class InvalidSignature(ValueError):
    """A signature string outside the grammar; the message starts with ``signature: ``."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"signature: {problem}")
        self.problem = problem


class _Refused(Exception):
    """An annotation node outside the grammar (caught and reported with the field's name)."""


def parse_signature(text: str, instructions: str | None = None) -> type[dspy.Signature]:
    """The ``dspy.Signature`` for ``"name[: type], ... -> name[: type], ..."``.

    Raises InvalidSignature naming the field and the annotation for anything outside the
    grammar. ``instructions`` None gives DSPy's default instructions.
    """
    inputs, outputs = parse_fields(text)
    fields: dict[str, tuple[Any, Any]] = {}
    for name, annotation, undefined in inputs:
        fields[name] = (annotation, dspy.InputField(**{IS_TYPE_UNDEFINED: undefined}))
    for name, annotation, _ in outputs:
        fields[name] = (annotation, dspy.OutputField())
    try:
        signature: type[Any] = dspy.Signature(fields, instructions)
        return signature
    except Exception as exc:  # pydantic refuses names such as 'fields', 'instructions', 'model_*'
        # Its message shows objects of the server (method reprs with addresses): name the class only.
        raise InvalidSignature(
            f"{shown(text)} cannot be built ({type(exc).__name__}): a field name clashes with "
            "an attribute of dspy.Signature or pydantic's BaseModel; rename it"
        ) from None


Field = tuple[str, Any, bool]  # name, annotation, annotation left out (str by default)


def parse_fields(text: str) -> tuple[list[Field], list[Field]]:
    """(inputs, outputs) of a signature string, each field (name, type, type left out)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSignature("must be a non-empty string such as 'text -> label'")
    if len(text) > MAX_SIGNATURE_CHARS:
        raise InvalidSignature(f"at most {MAX_SIGNATURE_CHARS} characters, got {len(text)}")
    arrows = text.count("->")
    if arrows != 1:
        what = "has no '->'" if arrows == 0 else f"has {arrows} '->'"
        raise InvalidSignature(f"{shown(text)} {what}: exactly one must separate inputs from outputs")
    left, right = text.split("->")
    inputs = [_field(chunk, "input") for chunk in _chunks(left)]
    outputs = [_field(chunk, "output") for chunk in _chunks(right)]
    if not inputs:
        raise InvalidSignature(f"{shown(text)} declares no input fields")
    if not outputs:
        raise InvalidSignature(f"{shown(text)} declares no output fields")
    if len(inputs) + len(outputs) > MAX_FIELDS:
        raise InvalidSignature(f"at most {MAX_FIELDS} fields, got {len(inputs) + len(outputs)}")
    seen: set[str] = set()
    for name, _, _ in (*inputs, *outputs):
        if name in seen:
            raise InvalidSignature(f"field {shown(name)} appears twice (names must be distinct)")
        seen.add(name)
    return inputs, outputs


def _chunks(side: str) -> list[str]:
    """The comma-separated fields of one side; commas inside brackets or quotes do not split.

    One trailing comma is allowed (``a, b, -> c``), as Python's own argument lists allow it.
    """
    parts: list[str] = []
    depth, quote, start, i = 0, "", 0, 0
    while i < len(side):
        c = side[i]
        if quote:
            if c == "\\":
                i += 1  # the escaped character cannot close the string
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth <= 0:
            parts.append(side[start:i])
            start = i + 1
        i += 1
    parts.append(side[start:])
    if len(parts) > 1 and not parts[-1].strip():
        parts.pop()
    if len(parts) == 1 and not parts[0].strip():
        return []
    for n, part in enumerate(parts):
        if not part.strip():
            raise InvalidSignature(f"field {n + 1} of {shown(side.strip())} is empty")
    return parts


def _field(chunk: str, role: str) -> Field:
    raw_name, colon, raw_annotation = chunk.partition(":")
    # Python reads identifiers in NFKC form (DSPy's parser went through Python's): keep that.
    name = unicodedata.normalize("NFKC", raw_name.strip())
    if not name.isidentifier() or keyword.iskeyword(name):
        raise InvalidSignature(f"{role} field name {shown(raw_name.strip())} is not an identifier")
    if name.startswith("_"):
        raise InvalidSignature(f"field {shown(name)}: names may not start with '_' (pydantic refuses them)")
    if not colon:
        return name, str, True
    annotation = raw_annotation.strip()
    if not annotation:
        raise InvalidSignature(f"field {shown(name)}: nothing after ':' (give a type or leave out the ':')")
    try:
        tree = ast.parse(annotation, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # ValueError: NUL bytes
        raise InvalidSignature(
            f"field {shown(name)}: annotation {shown(annotation)} is not a type expression"
        ) from None
    try:
        resolved = _type(tree.body, 1, allow_none=False)
    except _Refused as exc:
        raise InvalidSignature(
            f"field {shown(name)}: annotation {shown(annotation)}: {exc}; supported: {SUPPORTED}"
        ) from None
    return name, resolved, False


def _type(node: ast.expr, depth: int, *, allow_none: bool) -> Any:
    """The type a whitelisted node names. Only node shapes are matched and only fixed
    tables are looked up: no name from the text reaches getattr, import or eval."""
    if depth > MAX_ANNOTATION_DEPTH:
        raise _Refused(f"nested deeper than {MAX_ANNOTATION_DEPTH} levels")
    if isinstance(node, ast.Constant) and node.value is None and allow_none:
        return None  # typing turns it into NoneType inside Optional/Union, as DSPy's parser did
    if isinstance(node, ast.Name):
        if node.id in _PLAIN:
            return _PLAIN[node.id]
        raise _Refused("not a supported type")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left = _type(node.left, depth + 1, allow_none=True)
        right = _type(node.right, depth + 1, allow_none=True)
        if left is None and right is None:
            raise _Refused("None | None names no type")
        # DSPy's parser built `X | Y` as typing.Union[X, Y] (not types.UnionType), argument
        # order kept (`None | str` is Union[None, str]): same here.
        return typing.Union[left, right]  # noqa: UP007
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        base = node.value.id
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Literal":
            return typing.Literal[tuple(_literal(arg) for arg in args)]
        if base == "Optional":
            if len(args) != 1:
                raise _Refused("Optional takes exactly one type")
            return typing.Optional[_type(args[0], depth + 1, allow_none=False)]  # noqa: UP045 (as DSPy built it)
        if base == "Union":
            members = tuple(_type(arg, depth + 1, allow_none=True) for arg in args)
            if all(m is None for m in members):
                raise _Refused("a Union of None only names no type")
            return typing.Union[members]  # noqa: UP007
        if base in _GENERIC:
            generic, arity = _GENERIC[base]
            if len(args) != arity:
                raise _Refused(f"{base} takes {arity} type argument{'s' if arity > 1 else ''}")
            types = tuple(_type(arg, depth + 1, allow_none=False) for arg in args)
            return generic[types[0]] if arity == 1 else generic[types]
    raise _Refused("not a supported type")


def _literal(node: ast.expr) -> object:
    if isinstance(node, ast.Constant) and type(node.value) in _LITERAL_TYPES:
        return node.value
    raise _Refused("Literal values must be strings, integers, bools or None")


__all__ = [
    "MAX_ANNOTATION_DEPTH",
    "MAX_FIELDS",
    "MAX_SIGNATURE_CHARS",
    "SUPPORTED",
    "InvalidSignature",
    "parse_fields",
    "parse_signature",
]
