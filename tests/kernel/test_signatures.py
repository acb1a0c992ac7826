"""The project's signature parser builds exactly what DSPy's parser built for every ordinary
signature: field order, annotations, json_schema_extra (prefixes, descriptions,
IS_TYPE_UNDEFINED), instructions, saved state and the very prompts DSPy's adapters write
(the offline LM reads field types from the prompt text). And it refuses the rest with a
message naming the field and the annotation, importing nothing."""

from __future__ import annotations

import sys

import dspy
import pytest

from dspyops.programs.build import build_module, load_program, program_state
from dspyops.programs.signatures import (
    MAX_ANNOTATION_DEPTH,
    MAX_FIELDS,
    MAX_SIGNATURE_CHARS,
    InvalidSignature,
    parse_signature,
)
from dspyops.programs.spec import ProgramSpec

ORDINARY = [
    "text -> label",
    "question, context -> answer",
    "camelCaseText, html2text -> HTMLParser",
    "a: str, b: int -> c: float, d: bool",
    "text: str -> label: str",
    "items: list[str] -> counts: dict[str, int]",
    "text -> label: Literal['billing', 'refund', 'shipping']",
    "text -> label: Literal[1, True, None]",
    "x: Optional[str] -> y",
    "x: str | None -> y: None | int",
    "x: Union[int, str, None] -> y",
    "x: list[dict[str, list[int]]] -> y: dict[str, list[dict[str, float]]]",
    "x: List[str], y: Dict[str, Any] -> z: Any",
    "x: list, y: dict -> z",
    "a, b, -> c",  # a trailing comma, as Python allows in an argument list
    "  spaced :  list[ str ]  ,other->  out : int ",
]
INSTRUCTIONS = [None, "Classify the support ticket.\n\nAnswer with one word."]


def _same_fields(ours: type[dspy.Signature], theirs: type[dspy.Signature]) -> None:
    assert list(ours.fields) == list(theirs.fields)
    assert list(ours.input_fields) == list(theirs.input_fields)
    for name, field in theirs.fields.items():
        mine = ours.fields[name]
        assert mine.annotation == field.annotation, name
        assert repr(mine.annotation) == repr(field.annotation), name
        assert mine.json_schema_extra == field.json_schema_extra, name
        assert list(mine.json_schema_extra or {}) == list(field.json_schema_extra or {}), name
        assert mine.is_required() == field.is_required(), name


@pytest.mark.parametrize("instructions", INSTRUCTIONS, ids=["default-instructions", "instructions"])
@pytest.mark.parametrize("text", ORDINARY)
def test_same_signature_as_dspys_parser(text: str, instructions: str | None) -> None:
    theirs = dspy.Signature(text, instructions)
    ours = parse_signature(text, instructions)
    _same_fields(ours, theirs)
    assert ours.instructions == theirs.instructions
    assert ours.__name__ == theirs.__name__
    assert ours.signature == theirs.signature
    assert ours.dump_state() == theirs.dump_state()
    assert ours.equals(theirs)


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
@pytest.mark.parametrize("text", ORDINARY)
def test_prompts_are_byte_identical(text: str, adapter: dspy.Adapter) -> None:
    theirs = dspy.Signature(text, "Do it.")
    ours = parse_signature(text, "Do it.")
    demos = [{name: f"demo {name}" for name in theirs.fields}]
    inputs = {name: f"value of {name}" for name in theirs.input_fields}
    assert adapter.format(ours, demos, inputs) == adapter.format(theirs, demos, inputs)
    # ChainOfThought prepends `reasoning`: the extended signature must match too
    cot_ours = dspy.ChainOfThought(ours).predict.signature
    cot_theirs = dspy.ChainOfThought(theirs).predict.signature
    assert adapter.format(cot_ours, demos, inputs) == adapter.format(cot_theirs, demos, inputs)


@pytest.mark.parametrize("module", ["Predict", "ChainOfThought"])
def test_a_state_saved_with_dspys_parser_loads_into_ours(module: str) -> None:
    text = "question: str, context: list[str] -> answer: Literal['yes', 'no']"
    cls = dspy.Predict if module == "Predict" else dspy.ChainOfThought
    theirs = cls(dspy.Signature(text, "Answer yes or no."))
    for predictor in theirs.predictors():
        predictor.demos = [dspy.Example(question="q", context=["c"], answer="yes")]
    state = program_state(theirs)
    loaded = load_program(ProgramSpec(module, text, "Answer yes or no."), state)
    assert program_state(loaded) == state
    assert build_module(ProgramSpec(module, text)).dump_state().keys() == loaded.dump_state().keys()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["non-empty"]),
        ("question answer", ["no '->'"]),
        ("a -> b -> c", ["2 '->'"]),
        ("-> answer", ["no input fields"]),
        ("question ->", ["no output fields"]),
        ("a b -> c", ["'a b'", "not an identifier"]),
        ("class -> c", ["'class'", "not an identifier"]),
        ("_private -> c", ["'_private'", "'_'"]),
        ("a,,b -> c", ["empty"]),
        ("a -> a", ["'a'", "twice"]),
        ("a: -> b", ["'a'", "nothing after ':'"]),
        ("a: NoSuchType -> b", ["field 'a'", "'NoSuchType'", "not a supported type"]),
        ("a: os.environ -> b", ["field 'a'", "'os.environ'", "not a supported type"]),
        ("a -> b: list[str, int]", ["field 'b'", "list takes 1 type argument"]),
        ("a: dict[str] -> b", ["field 'a'", "dict takes 2 type arguments"]),
        ("a: Literal[-1] -> b", ["field 'a'", "Literal values"]),
        ("a: None -> b", ["field 'a'", "not a supported type"]),
        ("a: list[None] -> b", ["field 'a'", "not a supported type"]),
        ("a: Optional[str, int] -> b", ["field 'a'", "exactly one"]),
        ("a: (str -> b", ["field 'a'", "not a type expression"]),
        ("a: 'str' -> b", ["field 'a'", "not a supported type"]),
        ("fields -> b", ["clashes"]),
        ("a -> model_dump", ["clashes"]),
    ],
)
@pytest.mark.filterwarnings("ignore:Field name .* shadows an attribute")  # pydantic, for 'fields'
def test_refusals_name_the_field_and_the_annotation(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidSignature) as err:
        parse_signature(text)
    message = str(err.value)
    assert message.startswith("signature: ")
    for fragment in fragments:
        assert fragment in message, message
    assert "0x" not in message  # no object reprs of the server


def test_bounds_on_length_fields_and_depth() -> None:
    with pytest.raises(InvalidSignature, match=f"at most {MAX_SIGNATURE_CHARS} characters"):
        parse_signature("a -> " + "b" * MAX_SIGNATURE_CHARS)
    with pytest.raises(InvalidSignature, match=f"at most {MAX_FIELDS} fields"):
        parse_signature("a -> " + ", ".join(f"f{i}" for i in range(MAX_FIELDS)))
    deepest = "list[" * (MAX_ANNOTATION_DEPTH - 1) + "str" + "]" * (MAX_ANNOTATION_DEPTH - 1)
    assert (
        parse_signature(f"a: {deepest} -> b").fields["a"].annotation
        == dspy.Signature(f"a: {deepest} -> b").fields["a"].annotation
    )
    with pytest.raises(InvalidSignature, match=f"nested deeper than {MAX_ANNOTATION_DEPTH}") as err:
        parse_signature(f"a: list[{deepest}] -> b")
    assert "characters)" in str(err.value) or len(str(err.value)) < 400  # the annotation is cut
    with pytest.raises(InvalidSignature, match="nested deeper"):
        parse_signature("a: " + " | ".join(["str"] * 500) + " -> b")  # a flat-looking chain nests too
    with pytest.raises(InvalidSignature, match="not a type expression"):
        parse_signature("a: " + "(" * 1000 + "str" + ")" * 1000 + " -> b")


def test_an_echoed_annotation_is_cut() -> None:
    long = "x" * 3000
    with pytest.raises(InvalidSignature) as err:
        parse_signature(f"a: {long} -> b")
    assert "(3000 characters)" in str(err.value) and len(str(err.value)) < 400


def test_unknown_names_are_never_imported() -> None:
    candidates = [name for name in ("this", "tabnanny", "mailbox", "wave") if name not in sys.modules]
    assert candidates  # stdlib modules nothing here imports
    for name in candidates:
        with pytest.raises(InvalidSignature):
            parse_signature(f"a: {name}.X -> b: list[{name}]")
    assert not set(candidates) & set(sys.modules)
