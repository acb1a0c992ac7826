"""RegisterCorpus and ListCorpora: corpora for Retrieve stages, through the one writer path.

RegisterCorpus takes the documents inline or from a JSONL/CSV file under the datasets
directory, checks them all (dspyops.corpora) before anything is written, stores their
canonical JSON content-addressed in the artifact store, then appends CorpusRegistered to
corpus-<name> carrying the same bytes (so a gateway needs only the log). The same documents
under the same name again append nothing (the name already points there); other documents
move the name, and versions that recorded the old digest keep searching it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dspyops.artifacts import ArtifactStore
from dspyops.commands import Decision
from dspyops.corpora import check_documents, documents_from_file, encode_documents
from dspyops.errors import InvalidArgument
from dspyops.ledger import Ledger
from dspyops.names import check_name, corpus_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.retrieval import Document
from dspyops.state import CorpusState, State


def corpus_view(corpus: CorpusState) -> opb.Corpus:
    return opb.Corpus(
        corpus=corpus.name,
        digest=corpus.digest,
        count=corpus.count,
        registered_position=corpus.registered_position,
    )


class CorpusHandlers:
    def __init__(self, ledger: Ledger, artifacts: ArtifactStore, datasets_dir: Path | None) -> None:
        self.ledger = ledger
        self.artifacts = artifacts
        self.datasets_dir = datasets_dir

    async def register_corpus(self, request: opb.RegisterCorpusRequest) -> opb.Corpus:
        return await asyncio.to_thread(self._register, request)

    async def list_corpora(self, request: opb.ListCorporaRequest) -> opb.ListCorporaResponse:
        state = await asyncio.to_thread(self.ledger.refresh)
        return opb.ListCorporaResponse(
            corpora=[corpus_view(c) for c in sorted(state.corpora.values(), key=lambda c: c.name)]
        )

    def _documents(self, request: opb.RegisterCorpusRequest) -> tuple[Document, ...]:
        if request.HasField("source"):
            if request.documents:
                raise InvalidArgument("source", "give the documents inline or a source file, not both")
            if request.source.input_keys:
                raise InvalidArgument(
                    "source.input_keys", "a corpus has none (text_field, id_field name its columns)"
                )
            return documents_from_file(
                self.datasets_dir, request.source.path, request.text_field, request.id_field
            )
        for name in ("text_field", "id_field"):
            if getattr(request, name):
                raise InvalidArgument(name, "only with source (a column of its file)")
        return check_documents([(d.id, d.text) for d in request.documents])

    def _register(self, request: opb.RegisterCorpusRequest) -> opb.Corpus:
        name = request.corpus
        check_name("corpus", name)
        documents = self._documents(request)
        digest, data = encode_documents(documents)

        def decide(state: State) -> Decision:
            current = state.corpora.get(name)
            if current is not None and current.digest == digest:
                return Decision()  # the name points there already: nothing to record
            event = pb.CorpusRegistered(corpus=name, digest=digest, documents=data, count=len(documents))
            return Decision(corpus_stream(name), [event], current.stream_version if current else 0)

        # content-addressed, so a copy kept for a registration that then fails is harmless;
        # written first, so the event never names a digest this store lacks
        self.artifacts.put(data)
        # a racing registration of the same name: decided again on the state it left
        outcome = self.ledger.run("RegisterCorpus", request, decide, attempts=5)
        return corpus_view(outcome.state.corpora[name])
