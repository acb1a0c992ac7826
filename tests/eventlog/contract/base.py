"""What every part of the contract shares: the hooks a backend's test class provides, the
fixtures built on them, and the helpers."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import ParamSpec

import pytest

from dspyops.eventlog import ANY, EventStore, NewEvent, StoredEvent, link_v2, open_store
from dspyops.eventlog.hashchain import micros
from tests.eventlog.workers import Gate, tagged_batch

StoreFactory = Callable[[], EventStore]
Tamper = Callable[[int, str, object], None]
RewriteAsV1 = Callable[[], None]
# where a test runs a foreign writer (process_writer on store_url), and the barrier factory
# that starts it together with the test's own threads
WriterPool = tuple[Executor, Callable[[int], Gate]]

CHAIN_KEY = b"contract-suite-chain-key-32bytes"

SPAWN = multiprocessing.get_context("spawn")
P = ParamSpec("P")


def ev(payload: bytes = b"p", type: str = "dspyops.v1.Test", event_id: str | None = None) -> NewEvent:
    return NewEvent(type, payload) if event_id is None else NewEvent(type, payload, event_id)


def fill(store: EventStore, n: int, stream: str = "fill") -> None:
    for i in range(n):
        store.append(stream, tagged_batch("fill", i, 1), ANY)


@contextlib.contextmanager
def closing_all(open_one: Callable[P, EventStore]) -> Iterator[Callable[P, EventStore]]:
    """A store factory (``open_one``) whose every store is closed when the block ends."""
    opened: list[EventStore] = []

    def make(*args: P.args, **kwargs: P.kwargs) -> EventStore:
        store = open_one(*args, **kwargs)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            store.close()


class ContractBase:
    """The hooks (fixtures each backend's test class overrides) and the shared fixtures."""

    # -- backend hooks ------------------------------------------------------------------------

    @pytest.fixture
    def store_url(self) -> str:
        """Backend hook: a URL for open_store naming a fresh, empty store for this test."""
        raise NotImplementedError

    @pytest.fixture
    def new_empty_store(self) -> Iterator[StoreFactory]:
        """Backend hook: each call returns a store on its own fresh, empty storage."""
        raise NotImplementedError

    @pytest.fixture
    def make_readonly_store(self, store_url: str) -> StoreFactory:
        """Backend hook: opens the store at store_url so that writes fail as on read-only media."""
        raise NotImplementedError

    @pytest.fixture
    def tamper(self, store_url: str) -> Tamper:
        """Backend hook: tamper(position, column, value) rewrites one stored column behind the
        store's back, as an attacker with file access would."""
        raise NotImplementedError

    @pytest.fixture
    def writer_pool(self) -> Iterator[WriterPool]:
        """Backend hook: where the subscription tests run their foreign writer, a store of its
        own on store_url: another process where other processes share the backend's log
        (ProcessContract provides that), a thread otherwise."""
        raise NotImplementedError

    @pytest.fixture
    def rewrite_as_v1(self, store_url: str) -> RewriteAsV1:
        """Backend hook: rewrite_as_v1() turns every stored link into a chain v1 link (link
        version 1), as a log written before chain v2 holds them."""
        raise NotImplementedError

    # -- shared fixtures ----------------------------------------------------------------------

    @pytest.fixture
    def make_store(self, store_url: str) -> Iterator[StoreFactory]:
        with closing_all(lambda: open_store(store_url)) as make:
            yield make

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> EventStore:
        return make_store()

    @pytest.fixture
    def make_keyed_store(self, store_url: str) -> Iterator[Callable[[bytes], EventStore]]:
        with closing_all(lambda key=CHAIN_KEY: open_store(store_url, chain_key=key)) as make:
            yield make


def link_of(event: StoredEvent, prev_hash: bytes) -> bytes:
    return link_v2(
        prev_hash,
        event.position,
        event.stream,
        event.version,
        event.event_id,
        event.type,
        micros(event.recorded_at),
        event.actor,
        event.payload,
    )


def replace_actor(event: StoredEvent, actor: str) -> StoredEvent:
    from dataclasses import replace

    return replace(event, actor=actor)
