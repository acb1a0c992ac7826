"""The gateway's corpora: a real optimizer registers corpora, a real gateway folds the log,
and the gateway's Retrieve stages rank exactly as the optimizer's do, from the documents in
the log alone; a version keeps the digest its lineage recorded after the name moves on;
one index per digest for every version; a snapshot restore finds the documents too."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dspyops.client import OptimizerClient
from dspyops.corpora import log_corpora
from dspyops.eventlog import open_store
from dspyops.fold import fold
from dspyops.programs.errors import ProgramError
from gateway_svc.corpora import GatewayCorpora, restore_corpora
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, wait_until

HELP_CENTRE = Path(__file__).resolve().parents[2] / "dspyops" / "data" / "corpora" / "help_centre.jsonl"
QUERIES = [
    "How long until my refund reaches my card?",
    "tracking number has not moved for a week",
    "password reset email never arrives",
    "charged twice for one order",
    "the app crashes on start",
    "zzzz no such words",
]


@dataclass
class Servers:
    optimizer: ServerThread
    gateway: ServerThread
    log: str
    first: str  # the digest "help" pointed to first
    moved: str  # the digest it points to now


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("corpus-cache")
    datasets = tmp / "datasets"
    datasets.mkdir()
    shutil.copy(HELP_CENTRE, datasets / "help.jsonl")
    log = str(tmp / "log.db")
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data", datasets_dir=datasets))
    )
    with OptimizerClient(optimizer.address) as opt:
        first = opt.register_corpus("help", source="help.jsonl", id_field="id").digest
        moved = opt.register_corpus("help", [{"id": "only", "text": "Refunds are handled by email."}])
        gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
        replica = gateway.running.replica
        assert wait_until(lambda: replica.state.position >= moved.registered_position)
        yield Servers(optimizer, gateway, log, first, moved.digest)
    gateway.stop()
    optimizer.stop()


def passages(make: object, corpus: str = "help") -> list[list[str]]:
    stage = make(corpus, 3)  # type: ignore[operator]
    return [stage(query=q).passages for q in QUERIES]


def test_the_gateway_ranks_as_the_optimizer_does_from_the_log_alone(servers: Servers) -> None:
    running = servers.optimizer.running
    optimizer_side = log_corpora(running.store, running.jobs.ledger.refresh, running.jobs.artifacts)
    state = running.jobs.ledger.refresh()
    gateway, folded = servers.gateway.running.replica.corpora, servers.gateway.running.replica.state
    for digest in (servers.first, servers.moved):
        expected = passages(optimizer_side.factory(optimizer_side.pinned({"help": digest})))
        got = passages(gateway.for_version({"search": digest}, folded, {"search": "help"}))
        assert got == expected
    assert passages(optimizer_side.factory(optimizer_side.current(state))) == passages(
        gateway.for_version({"search": servers.moved}, folded, {"search": "help"})
    )
    first = passages(gateway.for_version({"search": servers.first}, folded))
    assert first[0][0].startswith("How long a refund takes") and first[-1] == []


def test_a_version_keeps_its_digest_and_every_version_shares_its_index(servers: Servers) -> None:
    replica = servers.gateway.running.replica
    gateway, state = replica.corpora, replica.state
    before = gateway.corpora.indexes.builds
    old = gateway.for_version({"search": servers.first}, state)("help", 3)  # a user module's: by name
    again = gateway.for_version({"retrieve": servers.first}, state, {"retrieve": "help"})("help", 5)
    assert old.digest == servers.first != servers.moved  # not what the name points to now
    assert old.index is again.index and len(old.index) == 32
    assert gateway.corpora.indexes.builds - before <= 1
    with pytest.raises(ProgramError) as err:  # a stage its lineage does not name: refused
        gateway.for_version({}, state, {"search": "help"})("help", 3)
    assert err.value.field == "corpus"
    with pytest.raises(ProgramError):  # nor a name the recorded digest never had
        gateway.for_version({"search": servers.first}, state)("faq", 3)


def test_a_snapshot_restore_finds_every_digest_in_the_log(servers: Servers) -> None:
    store = open_store(servers.log, create=False)
    try:
        state = fold(store.read(after_position=0, limit=10_000))
        restored = GatewayCorpora(restore_corpora(store, state))
    finally:
        store.close()
    live = servers.gateway.running.replica.corpora
    for digest in (servers.first, servers.moved):
        assert restored.corpora.documents(digest) == live.corpora.documents(digest)
