"""BM25 search over a corpus's documents, with bm25s (sparse matrices: no model, no network).

A `Retriever` is built from the documents alone and is immutable, so it is cheap to rebuild
from a corpus digest and safe to share: every copy of a program (optimizers deep-copy their
students) and every thread uses the same index.

Tokenization is bm25s' own `Tokenizer` over the documents: lowercase, its default token
pattern (words of two or more word characters), English stop words (NLTK's list, bm25s'
``en_plus``: 179 words; its ``en`` list has 33 and keeps "my", "how", "your"), and the
Snowball English stemmer (PyStemmer). Its vocabulary is numbered in order of first use, so
the same documents give the same index, bit for bit, in every process (``bm25s.tokenize``
numbers stems in set order, which varies with PYTHONHASHSEED, so it is not used).

Queries are split, stopped and stemmed by the same rules and looked up in the index's
vocabulary without changing it (written here because ``Tokenizer.tokenize`` caches every
word it meets, even with ``update_vocab="never"``: at a gateway every query's new words
would stay in memory for good). A query term counts once however often it repeats. Ties
between equal scores go to the earlier document, and a document sharing no term with the
query is never returned, so `search` may return fewer than k documents.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Final

import numpy as np

STOPWORDS: Final = "en_plus"
_TOKEN_PATTERN: Final = r"(?u)\b\w\w+\b"  # bm25s' default
_SPLIT: Final = re.compile(_TOKEN_PATTERN)
#: what decides the ranking besides the documents (recorded in the notes; a change here is
#: a change of every Retrieve stage's behaviour)
SETTINGS: Final = {
    "library": f"bm25s {version('bm25s')}",
    "scoring": "lucene, k1=1.5, b=0.75",
    "stopwords": STOPWORDS,
    "stemmer": "snowball english (PyStemmer)",
    "token_pattern": _TOKEN_PATTERN,
}


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str


class Retriever:
    """The BM25 index of a sequence of documents (their order breaks ties)."""

    def __init__(self, documents: Sequence[Document]) -> None:
        # imported here: bm25s imports scipy, which a gateway must not load at start (its
        # statistics import it lazily too); only a process that builds an index pays for it
        import bm25s
        import Stemmer
        from bm25s.tokenization import STOPWORDS_EN_PLUS, Tokenizer

        self.documents: tuple[Document, ...] = tuple(documents)
        if not self.documents:
            raise ValueError("documents: a corpus has at least one document")
        # PyStemmer's stemmer objects are not thread-safe: one for the index, one (behind a
        # lock) for queries, which evaluation threads send at once
        tokenizer = Tokenizer(
            lower=True,
            splitter=_TOKEN_PATTERN,
            stopwords=STOPWORDS,
            stemmer=Stemmer.Stemmer("english").stemWord,
        )
        tokenized = tokenizer.tokenize(
            [d.text for d in self.documents], update_vocab=True, return_as="tuple", show_progress=False
        )
        self._vocab: dict[str, int] = dict(tokenized.vocab)  # stem -> id
        self._bm25 = bm25s.BM25()  # lucene, k1 1.5, b 0.75 (SETTINGS)
        self._bm25.index(tokenized, show_progress=False)
        self._stopwords = frozenset(STOPWORDS_EN_PLUS)  # what STOPWORDS names
        self._query_stemmer = Stemmer.Stemmer("english")
        self._query_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.documents)

    def query_terms(self, query: str) -> list[int]:
        """The query's stems that the index knows, as vocabulary ids, each once, in order."""
        words = [w for w in _SPLIT.findall(query.lower()) if w not in self._stopwords]
        with self._query_lock:
            stems = self._query_stemmer.stemWords(words)
        terms: dict[int, None] = {}
        for stem in stems:
            term = self._vocab.get(stem) if stem else None
            if term is not None:
                terms[term] = None
        return list(terms)

    def scores(self, query: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The BM25 score of every document for the query (zeros when no term matches)."""
        terms = self.query_terms(query)
        if not terms:
            return np.zeros(len(self.documents), dtype=np.float32)
        scores: np.ndarray[Any, np.dtype[np.float32]] = self._bm25.get_scores(terms)
        return scores

    def search(self, query: str, k: int) -> list[Document]:
        """The k best documents for the query, best first (fewer when fewer match)."""
        if k < 1:
            raise ValueError(f"k: must be at least 1, got {k}")
        scores = self.scores(query)
        hits = np.flatnonzero(scores > 0)
        # best score first, then document order: np.lexsort sorts by its last key first
        ranked = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [self.documents[int(i)] for i in ranked]

    # immutable: copies of a program share the index instead of duplicating its matrices
    def __copy__(self) -> Retriever:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Retriever:
        return self


class IndexCache:
    """BM25 indexes by corpus digest: one build per digest per process, shared by every
    program (and version) that searches it; the ``max_indexes`` most recently used are kept
    (a program that holds an index keeps it alive anyway). A digest names its documents, so
    the documents given for a digest already cached are not looked at again."""

    def __init__(self, max_indexes: int = 8) -> None:
        self.max_indexes = max_indexes
        self.builds = 0  # indexes built by this cache (what "once per digest" is checked by)
        self._indexes: OrderedDict[str, Retriever] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, digest: str) -> Retriever | None:
        with self._lock:
            found = self._indexes.get(digest)
            if found is not None:
                self._indexes.move_to_end(digest)
            return found

    def index(
        self, digest: str, documents: Callable[[], Sequence[Document]] | Sequence[Document]
    ) -> Retriever:
        """The digest's index, built from ``documents`` (or what calling it returns) when absent."""
        found = self.cached(digest)
        if found is not None:
            return found
        # built outside the lock: other digests need not wait; two racers build the same thing
        built = Retriever(documents() if callable(documents) else documents)
        with self._lock:
            kept = self._indexes.setdefault(digest, built)
            if kept is built:
                self.builds += 1
            self._indexes.move_to_end(digest)
            while len(self._indexes) > self.max_indexes:
                self._indexes.popitem(last=False)
        return kept
