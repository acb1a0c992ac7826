"""Racing writers on one program stream: every decision is made on one folded snapshot and
appended with that snapshot's stream version, so a writer that decided on stale state
loses with ABORTED instead of writing a duplicate or contradictory event."""

from __future__ import annotations

import threading
from pathlib import Path

from dspyops.errors import Aborted
from dspyops.eventlog import open_store
from dspyops.ledger import Ledger
from dspyops.proto import events_pb2 as pb
from optimizer_svc.registry.commands import Registry


def registered(program: str = "p") -> pb.VersionRegistered:
    return pb.VersionRegistered(
        program=program, spec=pb.ProgramSpec(module="Predict", signature="a -> b"), artifact_digest="0" * 64
    )


def test_concurrent_registrations_get_distinct_versions(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "log.db"))
    registries = [Registry(Ledger(store)) for _ in range(6)]  # six writers, each with its own view
    barrier = threading.Barrier(len(registries))
    versions: list[str] = []

    def register(registry: Registry) -> None:
        barrier.wait()
        for _ in range(3):
            versions.append(registry.register_version(registered(), promote=False).version)

    threads = [threading.Thread(target=register, args=(r,)) for r in registries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions, key=lambda v: tuple(map(int, v.split(".")))) == [f"1.{i}.0" for i in range(18)]
    assert [e.version for e in store.read_stream("program-p")] == list(range(1, 19))
    store.close()


def test_racing_promotions_leave_exactly_one_production_version(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "log.db"))
    setup = Registry(Ledger(store))
    for _ in range(4):
        setup.register_version(registered(), promote=False)
    writers = [Registry(Ledger(store)) for _ in range(4)]
    barrier = threading.Barrier(len(writers))
    outcomes: list[str] = []

    def promote(registry: Registry, version: str) -> None:
        barrier.wait()
        try:
            registry.set_status("p", version, pb.PRODUCTION, "race")
            outcomes.append("won")
        except Aborted as exc:
            assert "re-read and retry" in str(exc)
            outcomes.append("aborted")

    threads = [threading.Thread(target=promote, args=(w, f"1.{i}.0")) for i, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = Ledger(store).state
    statuses = [v.status for v in state.programs["p"].versions.values()]
    assert statuses.count("production") == 1
    assert outcomes.count("won") >= 1 and len(outcomes) == 4
    store.close()
