"""The BM25 retriever and the Retrieve stage: quality on the shipped help-centre corpus
(hand-written tickets find their article), the same ranking in every process, no
predictors for optimizers to see, one index per digest, and a missing corpus refused."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import dspy
import pytest

from dspyops.corpora import CorpusUnavailable, check_documents, decode_documents, encode_documents
from dspyops.programs.errors import ProgramError
from dspyops.programs.retrieve import (
    Retrieve,
    RetrieverFactory,
    corpus_retriever,
    lineage_corpora,
)
from dspyops.retrieval import Document, IndexCache, Retriever

HELP_CENTRE = Path(__file__).resolve().parents[2] / "dspyops" / "data" / "corpora" / "help_centre.jsonl"
ROWS = [json.loads(line) for line in HELP_CENTRE.read_text(encoding="utf-8").splitlines()]
DOCUMENTS = tuple(Document(r["id"], r["text"]) for r in ROWS)

# support tickets written for this test (not in the corpus, not in the shipped dataset)
QUERIES = [
    ("How many days until the refund shows up on my card?", "refund-timing"),
    ("I need a prepaid label to send the shoes back", "refund-return-label"),
    ("The mug arrived broken into pieces", "refund-damaged"),
    ("Can I still cancel my order before it ships?", "refund-cancel-order"),
    ("My parcel's tracking number shows nothing", "shipping-tracking"),
    ("I moved house, can I change the delivery address?", "shipping-address"),
    ("Do I have to pay customs duties on an international order?", "shipping-international"),
    ("The reset link for my password never arrived", "account-password"),
    ("My account got locked after too many wrong passwords", "account-locked"),
    ("Please delete my account and all my personal data", "account-delete"),
    ("How do I turn on two-factor authentication?", "account-two-factor"),
    ("There is a charge twice on my statement for one order", "billing-double-charge"),
    ("Where can I download a PDF invoice with our VAT number?", "billing-invoice"),
    ("I want to cancel my subscription plan", "billing-subscription-cancel"),
    ("My card payment was declined", "billing-failed-payment"),
    ("The app keeps crashing when I open it", "technical-app-crash"),
    ("I do not get any notifications on my phone", "technical-notifications"),
    ("The photo upload hangs and fails", "technical-upload"),
]


def test_the_shipped_corpus_is_the_help_centre() -> None:
    assert len(ROWS) >= 30
    assert {r["category"] for r in ROWS} == {"refund", "shipping", "account", "billing", "technical"}
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    check_documents([(d.id, d.text) for d in DOCUMENTS])  # a valid corpus as it is


@pytest.mark.parametrize("query,article", QUERIES, ids=[a for _, a in QUERIES])
def test_a_hand_written_ticket_finds_its_article_in_the_top_3(query: str, article: str) -> None:
    index = Retriever(DOCUMENTS)
    assert article in [d.id for d in index.search(query, 3)]


def test_most_hand_written_tickets_find_their_article_first() -> None:
    index = Retriever(DOCUMENTS)
    first = sum(index.search(query, 1)[0].id == article for query, article in QUERIES)
    assert first >= len(QUERIES) - 2, first


def test_a_query_sharing_no_term_finds_nothing_and_k_is_checked() -> None:
    index = Retriever(DOCUMENTS)
    assert index.search("zzzz qqqq", 3) == []
    assert index.search("the and of", 3) == []  # stop words only
    with pytest.raises(ValueError, match="k"):
        index.search("refund", 0)


_RANK = """
import json, sys
from dspyops.retrieval import Document, Retriever
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
index = Retriever([Document(r["id"], r["text"]) for r in rows])
queries = json.loads(sys.argv[2])
print(json.dumps([[d.id for d in index.search(q, 5)] for q in queries]))
"""


def test_the_ranking_is_the_same_in_every_process() -> None:
    queries = json.dumps([q for q, _ in QUERIES])
    runs = []
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _RANK, str(HELP_CENTRE), queries],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        runs.append(json.loads(out))
    here = Retriever(DOCUMENTS)
    assert runs[0] == runs[1] == runs[2] == [[d.id for d in here.search(q, 5)] for q, _ in QUERIES]


def test_ties_go_to_the_earlier_document() -> None:
    index = Retriever([Document("b", "refund policy"), Document("a", "refund policy")])
    assert [d.id for d in index.search("refund", 2)] == ["b", "a"]


class TwoStage(dspy.Module):
    def __init__(self, make: RetrieverFactory) -> None:
        super().__init__()
        self.search = make("help", 2)
        self.classify = dspy.Predict("ticket, passages -> label")


def test_retrieve_is_a_module_without_predictors_sharing_one_index_per_digest() -> None:
    digest, _ = encode_documents(DOCUMENTS)
    lookups: list[str] = []

    def lookup(name: str) -> tuple[str, tuple[Document, ...]] | None:
        lookups.append(name)
        return (digest, DOCUMENTS) if name == "help" else None

    cache = IndexCache()
    make = corpus_retriever(lookup, cache)
    program, other = TwoStage(make), TwoStage(make)
    assert [name for name, _ in program.named_predictors()] == ["classify"]
    assert list(program.dump_state()) == ["classify"]
    assert program.search.index is other.search.index and cache.builds == 1
    assert program.deepcopy().search.index is program.search.index
    assert copy.deepcopy(program).search.index is program.search.index
    assert lineage_corpora(program) == {"search": digest}
    assert program.search.corpus == "help"
    got = program.search(query="my parcel tracking shows nothing")
    assert got.passages[0] == next(d.text for d in DOCUMENTS if d.id == "shipping-tracking")
    assert len(got.passages) == 2
    assert asyncio.run(program.search.acall(query="my parcel tracking shows nothing")) == got


def test_a_missing_corpus_and_a_bad_k_are_program_errors() -> None:
    make = corpus_retriever(lambda name: None)
    with pytest.raises(ProgramError) as err:
        make("nope", 3)
    assert err.value.field == "corpus" and "'nope'" in err.value.problem
    index = Retriever(DOCUMENTS)
    with pytest.raises(ProgramError) as err:
        Retrieve("help", "d", 51, index)
    assert err.value.field == "k"


def test_documents_are_verified_before_they_are_parsed() -> None:
    digest, data = encode_documents(DOCUMENTS)
    assert decode_documents(data, digest) == DOCUMENTS
    with pytest.raises(CorpusUnavailable, match="hash"):
        decode_documents(data.replace(b"refund", b"REFUND", 1), digest)
