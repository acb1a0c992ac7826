"""The gateway's corpora: documents by digest from the log, one BM25 index per digest.

A gateway needs only the log: each corpus digest's documents are the bytes of the first
CorpusRegistered event that carries it (``State.corpus_contents``), kept as the tail passes
them (a remote gateway has no store to read them again from) or read from the store at a
snapshot restore. They are verified against the digest when an index is first built from
them, and the index is then shared by every version that searches that digest, however
many versions and copies of programs there are.

A version's Retrieve stages search the digests its lineage recorded (``Lineage.corpora``:
stage -> digest), never whatever a name points to now: ``GatewayCorpora.for_version``
gives the loader its ``(corpus, k) -> Retrieve`` factory for that version.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from dspyops.corpora import Corpora, CorpusUnavailable, event_corpus, registered_corpus
from dspyops.eventlog import EventStore, StoredEvent
from dspyops.programs.retrieve import RetrieverFactory
from dspyops.retrieval import IndexCache
from dspyops.state import State


class GatewayCorpora:
    def __init__(
        self, documents: Mapping[str, bytes] | None = None, indexes: IndexCache | None = None
    ) -> None:
        self._bytes: dict[str, bytes] = dict(documents or {})
        self.corpora = Corpora(self._fetch, indexes)

    def note(self, event: StoredEvent) -> None:
        """Keep the documents of a CorpusRegistered the tail passes (the first per digest)."""
        found = registered_corpus(event)
        if found is not None and found[1] and found[0] not in self._bytes:
            self._bytes[found[0]] = found[1]  # unchecked here: checked when first indexed

    def _fetch(self, digest: str) -> bytes:
        data = self._bytes.get(digest)
        if data is None:
            raise CorpusUnavailable(f"corpus {digest}: no CorpusRegistered this gateway folded carries it")
        return data

    def for_version(
        self, lineage: Mapping[str, str], state: State, stage_corpora: Mapping[str, str] | None = None
    ) -> RetrieverFactory:
        """The Retrieve factory of a registered version: the digests of its ``Lineage.corpora``
        (``stage_corpora``: a pipeline's Retrieve stage -> corpus name; see Corpora.recorded)."""
        return self.corpora.factory(self.corpora.recorded(lineage, state, stage_corpora))


def restore_corpora(store: EventStore, state: State) -> dict[str, bytes]:
    """The documents of every digest a snapshot's state knows, from their first events.
    A digest whose event fails verification is left out (and logged): the versions that
    search it are refused when loaded, the rest are served."""
    found: dict[str, bytes] = {}
    for digest, content in state.corpus_contents.items():
        try:
            found[digest] = event_corpus(store, digest, content.position)
        except CorpusUnavailable as exc:
            structlog.get_logger().error("corpus_refused", corpus=content.corpus, error=str(exc)[:300])
    return found
