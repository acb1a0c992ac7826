"""Corpora: the documents Retrieve stages search, content-addressed like artifacts.

A corpus is a list of documents (an id and a text each) registered under a name with
RegisterCorpus, inline or from a JSONL/CSV file under the optimizer's datasets directory.
Its digest is the sha256 hex of its canonical JSON, ``[{"id": ..., "text": ...}, ...]``
(sorted keys, no whitespace, UTF-8), in the order given: order breaks ties in the ranking.

The bytes live in two places, as a version's artifact does: inside the CorpusRegistered
event (so a gateway needs only the log) and in the optimizer's artifact store. The fold
keeps only where they are (``State.corpora`` name -> digest, ``State.corpus_contents``
digest -> its first event); `stored_corpus` finds the bytes, `decode_documents` verifies
them before parsing. `Corpora` builds one BM25 index per digest per process and keeps the
recent ones, and gives program builds their lookups (dspyops.programs.retrieve): a new
version searches the digest each name points to now (``Corpora.current``), recorded then in
``Lineage.corpora``; a registered version the digests it recorded (``Corpora.pinned``), so
re-registering a name never changes an existing version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound, ArtifactStore, canonical_json
from dspyops.datarefs import check_ref_path, read_rows
from dspyops.errors import SHOWN_CHARS, InvalidArgument, shown
from dspyops.eventlog import EventStore, StoredEvent
from dspyops.events import decode
from dspyops.limits import MAX_CORPUS_DOCUMENTS, MAX_DOCUMENT_ID_CHARS, MAX_DOCUMENT_TEXT_CHARS, MIB
from dspyops.programs.context import ProgramContext
from dspyops.programs.errors import ProgramError
from dspyops.programs.retrieve import Lookup, Retrieve, RetrieverFactory, corpus_retriever
from dspyops.proto import events_pb2 as pb
from dspyops.retrieval import Document, IndexCache, Retriever
from dspyops.state import State

MAX_DOCUMENTS: Final = MAX_CORPUS_DOCUMENTS
MAX_ID_CHARS: Final = MAX_DOCUMENT_ID_CHARS
MAX_TEXT_CHARS: Final = MAX_DOCUMENT_TEXT_CHARS
# the canonical JSON of a corpus; with the event's other fields it stays far under the
# log's per-event limit (limits.MAX_EVENT_PAYLOAD_BYTES, 12 MiB)
MAX_CORPUS_BYTES: Final = 8 * MIB
DEFAULT_TEXT_FIELD: Final = "text"

_REGISTERED = pb.CorpusRegistered.DESCRIPTOR.full_name


class CorpusUnavailable(Exception):
    """A digest whose documents cannot be had here, or whose bytes fail verification. The
    message names the digest and where it looked, never a document."""


# ---------------------------------------------------------------------- checking and encoding


def document_problem(doc_id: str, text: str) -> tuple[str, str] | None:
    """What is wrong with one document, as (its part: "id" | "text", the problem), or None."""
    if not doc_id:
        return "id", "is required"
    if len(doc_id) > MAX_ID_CHARS or not doc_id.isprintable():
        return "id", f"must be at most {MAX_ID_CHARS} printable characters, got {shown(doc_id)}"
    if not text.strip():
        return "text", "is empty"
    if len(text) > MAX_TEXT_CHARS:
        return "text", f"must be at most {MAX_TEXT_CHARS:,} characters, got {len(text):,}"
    return None


def check_documents(items: Sequence[tuple[str, str]], field: str = "documents") -> tuple[Document, ...]:
    """(id, text) pairs as Documents, or InvalidArgument naming ``field[i].id`` / ``.text``:
    at least one, at most MAX_DOCUMENTS, ids non-empty, printable and unique, texts not blank."""
    if not items:
        raise InvalidArgument(field, "a corpus needs at least one document")
    if len(items) > MAX_DOCUMENTS:
        raise InvalidArgument(field, f"at most {MAX_DOCUMENTS:,} documents, got {len(items):,}")
    seen: dict[str, int] = {}
    for i, (doc_id, text) in enumerate(items):
        problem = document_problem(doc_id, text)
        if problem is not None:
            raise InvalidArgument(f"{field}[{i}].{problem[0]}", problem[1])
        if doc_id in seen:
            raise InvalidArgument(f"{field}[{i}].id", f"{shown(doc_id)} repeats {field}[{seen[doc_id]}].id")
        seen[doc_id] = i
    return tuple(Document(doc_id, text) for doc_id, text in items)


def encode_documents(documents: Sequence[Document], field: str = "documents") -> tuple[str, bytes]:
    """(digest, canonical JSON bytes); InvalidArgument naming ``field`` beyond MAX_CORPUS_BYTES."""
    data = canonical_json([{"id": d.id, "text": d.text} for d in documents])
    if len(data) > MAX_CORPUS_BYTES:
        raise InvalidArgument(
            field, f"the corpus is {len(data):,} bytes as JSON; at most {MAX_CORPUS_BYTES:,} bytes"
        )
    return hashlib.sha256(data).hexdigest(), data


def decode_documents(data: bytes, digest: str) -> tuple[Document, ...]:
    """The documents of verified bytes: hashed before they are parsed, every time."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise CorpusUnavailable(f"corpus {digest}: its documents hash to {actual}: refused")
    try:
        rows = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusUnavailable(f"corpus {digest}: not UTF-8 JSON ({exc})") from None
    if not isinstance(rows, list) or not rows:
        raise CorpusUnavailable(f"corpus {digest}: not a list of documents")
    documents = []
    for row in rows:
        if (
            not isinstance(row, dict)
            or set(row) != {"id", "text"}
            or not isinstance(row["id"], str)
            or not isinstance(row["text"], str)
        ):
            raise CorpusUnavailable(f"corpus {digest}: a document is not {{'id': str, 'text': str}}")
        documents.append(Document(row["id"], row["text"]))
    return tuple(documents)


def documents_from_file(
    datasets_dir: Path | None,
    path: str,
    text_field: str = "",
    id_field: str = "",
    field: str = "source",
) -> tuple[Document, ...]:
    """The documents of a JSONL or CSV file under the datasets directory: the text from
    ``text_field`` (default "text"), the id from ``id_field`` (default: the row's number,
    from 1). Errors name ``<field>.path`` with the file and line, or the *_field at fault."""
    file = check_ref_path(datasets_dir, path, field)
    where = f"{field}.path"
    label = path if len(path) <= SHOWN_CHARS else shown(path)
    text_key = text_field or DEFAULT_TEXT_FIELD
    rows = read_rows(file, label, where)
    if len(rows) > MAX_DOCUMENTS:
        raise InvalidArgument(where, f"{label}: at most {MAX_DOCUMENTS:,} documents, got {len(rows):,} rows")
    if not rows:
        raise InvalidArgument(where, f"{label}: holds no documents")
    documents: list[Document] = []
    lines: dict[str, int] = {}
    for number, (lineno, row) in enumerate(rows, 1):
        if text_key not in row:
            raise InvalidArgument(
                "text_field" if text_field else where, f"{label}:{lineno}: has no column {shown(text_key)}"
            )
        text = row[text_key]
        if not isinstance(text, str):
            raise InvalidArgument(where, f"{label}:{lineno}: {shown(text_key)} must be a string")
        if id_field:
            if id_field not in row:
                raise InvalidArgument("id_field", f"{label}:{lineno}: has no column {shown(id_field)}")
            raw = row[id_field]
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise InvalidArgument(
                    where, f"{label}:{lineno}: {shown(id_field)} must be a string or integer"
                )
            doc_id = str(raw)
        else:
            doc_id = str(number)
        problem = document_problem(doc_id, text)
        if problem is not None:
            part = text_key if problem[0] == "text" else id_field or "id"
            raise InvalidArgument(where, f"{label}:{lineno}: {shown(part)} {problem[1]}")
        if doc_id in lines:
            raise InvalidArgument(where, f"{label}:{lineno}: id {shown(doc_id)} repeats line {lines[doc_id]}")
        lines[doc_id] = lineno
        documents.append(Document(doc_id, text))
    return tuple(documents)


# ---------------------------------------------------------------------- finding the bytes


def registered_corpus(event: StoredEvent) -> tuple[str, bytes] | None:
    """The digest and documents a CorpusRegistered event carries; None for any other event.
    Not verified here: whoever reads the documents does (``decode_documents``)."""
    if event.type != _REGISTERED:
        return None
    registered = decode(event)
    assert isinstance(registered, pb.CorpusRegistered)
    return registered.digest, registered.documents


def event_corpus(store: EventStore, digest: str, position: int) -> bytes:
    """The documents inside the CorpusRegistered event at ``position``, checked against ``digest``."""
    events = store.read(after_position=position - 1, limit=1) if position > 0 else []
    found = registered_corpus(events[0]) if events and events[0].position == position else None
    if found is None or found[0] != digest or not found[1]:
        raise CorpusUnavailable(
            f"corpus {digest}: the CorpusRegistered event at log position {position} does not carry it"
        )
    decode_documents(found[1], digest)  # verified here, so a caller never keeps bad bytes
    return found[1]


def stored_corpus(
    store: EventStore, state: State, digest: str, artifacts: ArtifactStore | None = None
) -> bytes:
    """A digest's verified bytes: the artifact store's file when it has one, else the event
    the state names for it. CorpusUnavailable when neither holds it."""
    if artifacts is not None:
        try:
            data = artifacts.get(digest)  # verifies the file's sha256
            decode_documents(data, digest)
            return data
        except (ArtifactNotFound, ArtifactCorrupt, CorpusUnavailable, ValueError):
            pass  # the copy in the log is the record
    content = state.corpus_contents.get(digest)
    if content is None:
        raise CorpusUnavailable(f"corpus {digest}: no CorpusRegistered in the log carries it")
    return event_corpus(store, digest, content.position)


# ---------------------------------------------------------------------- lookups for program builds


class Corpora:
    """A process's corpora for program builds: verified documents by digest (``fetch(digest)``
    returns the bytes or raises CorpusUnavailable) and one BM25 index per digest, shared by
    every version (``IndexCache``). Its lookups feed ``corpus_retriever``."""

    def __init__(self, fetch: Callable[[str], bytes], indexes: IndexCache | None = None) -> None:
        self.fetch = fetch
        self.indexes = indexes if indexes is not None else IndexCache()

    def documents(self, digest: str) -> tuple[Document, ...]:
        cached = self.indexes.cached(digest)
        if cached is not None:
            return cached.documents
        return decode_documents(self.fetch(digest), digest)

    def retriever(self, digest: str) -> Retriever:
        return self.indexes.index(digest, lambda: self.documents(digest))

    def current(self, state: State) -> Lookup:
        """For a new version (a job, an import, an evaluation of a spec): each name means
        the digest it points to in ``state``, the state the request is decided on."""

        def lookup(name: str) -> tuple[str, Sequence[Document]] | None:
            found = state.corpora.get(name)
            if found is None:
                return None
            return found.digest, self.retriever(found.digest).documents

        return lookup

    def pinned(self, digests: Mapping[str, str]) -> Lookup:
        """Corpus name -> digest, exactly (see ``pinned_digests``); any other name is unknown."""

        def lookup(name: str) -> tuple[str, Sequence[Document]] | None:
            digest = digests.get(name)
            if digest is None:
                return None
            return digest, self.retriever(digest).documents

        return lookup

    def recorded(
        self, lineage: Mapping[str, str], state: State, stage_corpora: Mapping[str, str] | None = None
    ) -> Lookup:
        """For a registered version: the digests its ``Lineage.corpora`` recorded (stage ->
        digest), whatever the names point to now. With ``stage_corpora`` (stage -> corpus
        name, a pipeline's spec says it) the join is exact; otherwise (a user module's
        retrievers) a name means the recorded digest it has pointed at (``CorpusContent.names``)."""
        if stage_corpora is not None:
            return self.pinned(pinned_digests(stage_corpora, lineage))
        recorded = list(dict.fromkeys(lineage.values()))

        def lookup(name: str) -> tuple[str, Sequence[Document]] | None:
            matches = [
                d for d in recorded if d in state.corpus_contents and name in state.corpus_contents[d].names
            ]
            if not matches:
                return None
            if len(matches) > 1:
                raise ProgramError(
                    "corpus", f"{shown(name)} has pointed at {len(matches)} of this version's corpora"
                )
            return matches[0], self.retriever(matches[0]).documents

        return lookup

    def factory(self, lookup: Lookup) -> RetrieverFactory:
        return corpus_retriever(lookup, self.indexes)


def pinned_digests(stage_corpora: Mapping[str, str], lineage: Mapping[str, str]) -> dict[str, str]:
    """Corpus name -> digest for a registered version: its spec's Retrieve stages (stage ->
    corpus name) joined with its ``Lineage.corpora`` (stage -> digest). A stage the lineage
    does not name is left out, so building it is refused ("no corpus named ...") rather than
    taking whatever the name points to now."""
    return {name: lineage[stage] for stage, name in stage_corpora.items() if stage in lineage}


def log_corpora(
    store: EventStore, state: Callable[[], State], artifacts: ArtifactStore | None = None
) -> Corpora:
    """The optimizer's Corpora: bytes from its artifact store, else from the log."""
    return Corpora(lambda digest: stored_corpus(store, state(), digest, artifacts))


def program_context(base: ProgramContext, corpora: Corpora, state: Callable[[], State]) -> ProgramContext:
    """A server's ProgramContext with its corpora: a new version's Retrieve stages search
    what each name points to in the newest state when it is built; a registered version's
    (``ProgramContext.for_version``) the digests its lineage recorded."""

    def retriever(corpus: str, k: int) -> Retrieve:
        return corpora.factory(corpora.current(state()))(corpus, k)

    def pinned(lineage: Mapping[str, str], stage_corpora: Mapping[str, str] | None) -> RetrieverFactory:
        return corpora.factory(corpora.recorded(lineage, state(), stage_corpora))

    return replace(base, retriever=retriever, pinned=pinned)
