"""The Retrieve stage: a `dspy.Module` that searches a registered corpus with BM25.

``Retrieve(corpus, digest, k, index)`` answers ``forward(query=...)`` (and ``aforward``) with
``dspy.Prediction(passages=[text, ...])``, the k best documents' texts, best first (fewer
when fewer share a term with the query). It has no predictors: optimizers see only the
stages around it, and DSPy's saved state of a program holds nothing for it (its documents
are the corpus, recorded by digest in the version's ``Lineage.corpora``).

``corpus_retriever(lookup)`` is how a program build gets Retrieve stages: ``lookup(name)``
says which digest and documents a corpus name means for this build (the name's current
digest for a new version, the recorded digest for a registered one), and the factory makes
``(corpus, k) -> Retrieve`` with the index of that digest, built once per digest in its
``IndexCache`` (shared by every version, and copy of a program, that searches it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import dspy

from dspyops.errors import shown
from dspyops.programs.errors import ProgramError
from dspyops.retrieval import Document, IndexCache, Retriever

DEFAULT_K: Final = 3
MAX_K: Final = 50

Lookup = Callable[[str], tuple[str, Sequence[Document]] | None]
RetrieverFactory = Callable[[str, int], "Retrieve"]


class Retrieve(dspy.Module):  # type: ignore[misc]  # dspy is untyped
    """``query -> passages`` over one corpus digest."""

    def __init__(self, corpus: str, digest: str, k: int, index: Retriever) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ProgramError("k", f"passages per query must be 1 to {MAX_K}, got {shown(k)}")
        self.corpus = corpus
        self.digest = digest
        self.k = k
        self.index = index  # immutable and shared: deep copies of the program keep this one

    def forward(self, query: Any = "", **_: Any) -> dspy.Prediction:
        return self._search(query)

    async def aforward(self, query: Any = "", **_: Any) -> dspy.Prediction:
        # BM25 over a small corpus is a sparse dot product: cheap, but off the event loop
        # all the same, since a corpus may hold thousands of documents
        return await asyncio.to_thread(self._search, query)

    def _search(self, query: Any) -> dspy.Prediction:
        # a wired query may be any value an earlier stage produced: searched as its text
        text = query if isinstance(query, str) else str(query)
        return dspy.Prediction(passages=[d.text for d in self.index.search(text, self.k)])

    def named_predictors(self) -> list[tuple[str, dspy.Predict]]:
        return []  # nothing here to optimize, whatever the index object holds

    def predictors(self) -> list[dspy.Predict]:
        return []


def corpus_retriever(lookup: Lookup, indexes: IndexCache | None = None) -> RetrieverFactory:
    """``(corpus name, k) -> Retrieve`` over the digest ``lookup`` gives for the name; a name
    it does not know is ``ProgramError("corpus", ...)``. ``indexes``: the process's cache
    (a new one otherwise)."""
    cache = indexes if indexes is not None else IndexCache()

    def make(corpus: str, k: int = DEFAULT_K) -> Retrieve:
        found = lookup(corpus)
        if found is None:
            raise ProgramError("corpus", f"no corpus named {shown(corpus)} is registered")
        digest, documents = found
        return Retrieve(corpus, digest, k or DEFAULT_K, cache.index(digest, documents))

    return make


def retrieve_stages(program: dspy.Module) -> Iterator[tuple[str, Retrieve]]:
    """(attribute path, module) of every Retrieve in a program, e.g. ("search", ...)."""
    if isinstance(program, Retrieve):
        yield "self", program
    for name, module in program.named_sub_modules():
        if isinstance(module, Retrieve) and name != "self":
            yield name.removeprefix("self."), module


def lineage_corpora(program: dspy.Module) -> dict[str, str]:
    """What ``Lineage.corpora`` records for a program: Retrieve stage -> its corpus digest."""
    return {name: module.digest for name, module in retrieve_stages(program)}


__all__ = [
    "DEFAULT_K",
    "MAX_K",
    "Lookup",
    "Retrieve",
    "RetrieverFactory",
    "corpus_retriever",
    "lineage_corpora",
    "retrieve_stages",
]
