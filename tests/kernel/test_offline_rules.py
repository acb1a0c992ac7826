"""The offline engine follows keyword rules in instructions and mines rules from proposal prompts."""

from __future__ import annotations

import json
import random
from typing import Literal

import dspy
import pytest

from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig, build_lm
from dspyops.offline.mining import Labeled, merge_rules, mine_rules, read_examples
from dspyops.offline.rules import Rule, apply_rules, parse_rules

RULES = (
    "Classify the support ticket.\n"
    "If the text mentions refund or money back, the label is refund.\n"
    "If the text mentions charged, invoice or card, then the label is billing.\n"
    'If the text contains "tracking number" or courier, the label is shipping.'
)
Choice = Literal["refund", "billing", "shipping", "account"]


class Ticket(dspy.Signature):
    text: str = dspy.InputField()
    label: Choice = dspy.OutputField()


class TicketWithPriority(dspy.Signature):
    text: str = dspy.InputField()
    label: Choice = dspy.OutputField()
    priority: str = dspy.OutputField()


@pytest.fixture
def offline() -> dspy.LM:
    return build_lm(LMConfig(), OFFLINE_ONLY)


def test_parse_rules_reads_the_documented_grammar() -> None:
    rules = parse_rules(RULES)
    assert rules == [
        Rule("text", ("refund", "money back"), "label", "refund"),
        Rule("text", ("charged", "invoice", "card"), "label", "billing"),
        Rule("text", ("tracking number", "courier"), "label", "shipping"),
    ]
    assert parse_rules(rules[1].text()) == [rules[1]]  # what the engine writes, it reads
    assert parse_rules("Classify the ticket. Be concise.") == []


def test_apply_rules_counts_keywords_stems_and_ties() -> None:
    rules = parse_rules(RULES)
    outputs = frozenset({"label"})

    def decide(text: str, choices: tuple[str, ...] = ()) -> str | None:
        hit = apply_rules(rules, {"text": text}, "label", choices, outputs)
        return hit.value if hit else None

    assert decide("They charges my card twice") == "billing"  # stems: charges ~ charged
    assert decide("I want my money back") == "refund"  # a phrase needs all its words
    assert decide("I want my money") is None
    assert decide("Refund the invoice charged to my card") == "billing"  # 3 keywords beat 1
    assert decide("refund the invoice") == "refund"  # a tie goes to the earlier rule
    assert decide("refund please", ("billing", "shipping")) is None  # value not a choice


def test_predict_follows_rules_before_the_nearest_demo(offline: dspy.LM) -> None:
    demo = dspy.Example(text="my card was charged twice", label="account").with_inputs("text")
    program = dspy.Predict(Ticket.with_instructions(RULES))
    program.demos = [demo]
    with dspy.context(lm=offline):
        assert program(text="Where is my refund? I was promised money back.").label == "refund"
        assert program(text="The courier lost it").label == "shipping"
        # No rule applies: the nearest demo answers, as before.
        assert program(text="it happened twice again").label == "account"


def test_without_rules_the_instruction_changes_nothing(offline: dspy.LM) -> None:
    plain = dspy.Predict(Ticket.with_instructions("Classify the support ticket."))
    ruled = dspy.Predict(Ticket.with_instructions(RULES))
    with dspy.context(lm=offline):
        text = "I was charged twice on my invoice"
        assert ruled(text=text).label == "billing"
        assert plain(text=text).label in ("refund", "billing", "shipping", "account")


def test_chain_of_thought_and_multi_field_outputs(offline: dspy.LM) -> None:
    cot = dspy.ChainOfThought(Ticket.with_instructions(RULES))
    multi = dspy.Predict(TicketWithPriority.with_instructions(RULES))
    json_multi = dspy.Predict(TicketWithPriority.with_instructions(RULES))
    with dspy.context(lm=offline):
        thought = cot(text="please refund my order")
        both = multi(text="my invoice is wrong")
    with dspy.context(lm=offline, adapter=dspy.JSONAdapter()):
        as_json = json_multi(text="my invoice is wrong")
    assert thought.label == "refund"
    assert "refund" in thought.reasoning and "If the text mentions refund" in thought.reasoning
    assert both.label == "billing" and isinstance(both.priority, str) and both.priority
    assert as_json.label == "billing" and as_json.priority


EXAMPLES = [
    Labeled({"text": "I was charged twice for my plan"}, {"label": "billing"}),
    Labeled({"text": "The invoice charged me a fee"}, {"label": "billing"}),
    Labeled({"text": "My package never arrived"}, {"label": "shipping"}),
    Labeled({"text": "The package tracking is stuck for my plan"}, {"label": "shipping"}),
]


def test_mine_rules_keeps_the_words_that_tell_labels_apart() -> None:
    rules = mine_rules(EXAMPLES)
    assert [(r.subject, r.output, r.value) for r in rules] == [
        ("text", "label", "billing"),
        ("text", "label", "shipping"),
    ]
    billing, shipping = rules
    assert billing.keywords[0] == "charged"  # in both billing examples, in no shipping one
    assert shipping.keywords[0] == "package"
    assert "plan" not in billing.keywords + shipping.keywords  # in one example of each label
    assert (
        mine_rules([Labeled({"text": "x"}, {"answer": "a long free-text answer, not a label at all"})]) == []
    )


def test_merge_rules_weighs_evidence_and_drops_ties() -> None:
    merged = merge_rules(
        [
            Rule("text", ("charged", "order"), "label", "billing"),
            Rule("text", ("charge", "fee"), "label", "billing"),
            Rule("text", ("order", "package"), "label", "shipping"),
        ]
    )
    billing, shipping = merged
    assert billing.keywords == ("charged", "fee")  # charged/charge meet (weight 2); order tied: dropped
    assert shipping.keywords == ("package",)


def test_read_examples_in_every_proposer_shape() -> None:
    mipro = "[Example({'text': 'my card was charged', 'label': 'billing'}) (input_keys={'text'})]"
    infer = "Input Fields:\ntext: my card was charged\n\n=========\nOutput Fields:\nlabel: billing\n\n"
    gepa = json.dumps(
        [
            {
                "Inputs": {"text": "my card was charged"},
                "Generated Outputs": {"label": "refund"},
                "Feedback": "Score 0. label: expected 'billing', got 'refund'",
            },
            {"Inputs": {"text": "where is it"}, "Generated Outputs": {"label": "x"}, "Feedback": "Score 0."},
        ]
    )
    want = [Labeled({"text": "my card was charged"}, {"label": "billing"})]
    assert read_examples({"examples": mipro}) == want
    assert read_examples({"examples_text": infer}) == want
    assert read_examples({"examples_with_feedback": gepa}) == want  # nothing to learn from the second
    assert read_examples({"examples": "[Example({'text': __import__('os')}) (input_keys={'text'})]"}) == []


def test_proposers_write_mined_rules_the_task_prompt_then_follows(offline: dspy.LM) -> None:
    """MIPROv2's describer -> summarizer -> proposer chain, and GEPA's and InferRules' prompts."""
    from dspy.propose.dataset_summary_generator import DatasetDescriptor, ObservationSummarizer
    from dspy.teleprompt.gepa.instruction_proposal import ProposeInstruction

    trainset = [
        dspy.Example(text=e.inputs["text"], label=e.outputs["label"]).with_inputs("text") for e in EXAMPLES
    ]
    with dspy.context(lm=offline):
        observations = dspy.Predict(DatasetDescriptor)(examples=repr(trainset)).observations
        summary = dspy.Predict(ObservationSummarizer)(observations=observations + observations).summary
        new = dspy.Predict(ProposeInstruction)(
            current_instruction="Classify the ticket.",
            examples_with_feedback=[
                {
                    "Inputs": {"text": "the courier lost my parcel"},
                    "Generated Outputs": {"label": "billing"},
                    "Feedback": "Score 0. label: expected 'shipping', got 'billing'",
                }
            ],
        ).new_instruction
    assert parse_rules(observations) == mine_rules(EXAMPLES)
    assert parse_rules(summary) == mine_rules(EXAMPLES)  # batches repeat: same rules, merged
    assert new.startswith("Classify the ticket.")
    assert parse_rules(new) == [Rule("text", ("courier", "lost", "parcel"), "label", "shipping")]
    program = dspy.Predict(Ticket.with_instructions(new))
    with dspy.context(lm=offline):
        assert program(text="a courier came by").label == "shipping"


def test_rules_mined_from_random_words_decide_new_inputs() -> None:
    """Words made up on the spot: nothing about them can be known in advance."""
    rng = random.Random(3)
    word = lambda: "".join(rng.choice("abcdefghij") for _ in range(7))  # noqa: E731
    vocab = {label: [word() for _ in range(3)] for label in ("red", "blue", "green")}
    examples = [
        Labeled({"text": f"{vocab[label][i % 3]} {word()} {word()}"}, {"label": label})
        for label in vocab
        for i in range(6)
    ]
    rules = mine_rules(examples)
    assert {r.value for r in rules} == set(vocab)
    for rule in rules:
        assert set(rule.keywords[:3]) == set(vocab[rule.value])  # in two examples each, noise in one
    for label, words in vocab.items():
        for w in words:
            hit = apply_rules(rules, {"text": f"{word()} {w} {word()}"}, "label", (), frozenset({"label"}))
            assert hit is not None and hit.value == label


def test_simba_advice_is_a_rule_from_its_example(offline: dspy.LM) -> None:
    from dspy.teleprompt.simba_utils import OfferFeedback

    fields: dict[str, object] = {name: "" for name in OfferFeedback.input_fields}
    fields.update(
        program_inputs=json.dumps({"text": "the courier lost my parcel"}),
        oracle_metadata=json.dumps({"label": "shipping"}),
        module_names=json.dumps(["self"]),
        worse_reward_value=0.0,
        better_reward_value=1.0,
    )
    with dspy.context(lm=offline):
        advice = dspy.Predict(OfferFeedback)(**fields).module_advice
    assert parse_rules(advice["self"]) == [Rule("text", ("courier", "lost", "parcel"), "label", "shipping")]


def test_long_or_odd_instructions_are_read_in_bounded_sentences() -> None:
    """A huge line of "if"s is skipped sentence by sentence (it used to take seconds)."""
    assert parse_rules("if the text mentions x " * 3000) == []
    many = "If the text mentions a, the label is b. " * 200
    assert len(parse_rules(many)) == 64  # MAX_RULES
    assert parse_rules("If the text mentions " + "word, " * 200 + "the label is b.") == []  # over 500 chars
