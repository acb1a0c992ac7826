"""A version's artifact, loaded one way everywhere (dspyops.artifacts.version_artifact): the
store's file when there is one, else the bytes of the version's VersionRegistered event,
verified either way. Through the kernel function on a real SQLite log, then through a real
optimizer server: Evaluate, ExportVersion and a job's must_beat all load it so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from dspyops.artifacts import (
    ArtifactCorrupt,
    ArtifactNotFound,
    encode_artifact,
    version_artifact,
)
from dspyops.artifacts.files import FileArtifactStore
from dspyops.client import OptimizerClient, examples
from dspyops.eventlog import EventStore, open_store
from dspyops.events import new_event
from dspyops.fold import fold
from dspyops.lm import LMConfig
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.state import VersionState
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

SPEC = ProgramSpec(module="Predict", signature="text -> label")
ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]


# ---------------------------------------------------------------------- the kernel function


def registered(
    store: EventStore, state: dict, *, carry_bytes: bool, version: str
) -> tuple[VersionState, bytes]:
    digest, data = encode_artifact(SPEC, state, LMConfig())
    event = pb.VersionRegistered(
        program="p",
        version=version,
        spec=pb.ProgramSpec(module=SPEC.module, signature=SPEC.signature),
        artifact_digest=digest,
        artifact=data if carry_bytes else b"",
        status=pb.DEVELOPMENT,
    )
    store.append("program-p", [new_event(event)], None)
    folded = fold(store.read(0, 1000))
    return folded.programs["p"].versions[version], data


@pytest.fixture()
def log(tmp_path: Path) -> Iterator[EventStore]:
    store = open_store(str(tmp_path / "log.db"))
    yield store
    store.close()


def test_the_file_when_present_else_the_events_bytes(log: EventStore, tmp_path: Path) -> None:
    artifacts = FileArtifactStore(tmp_path / "artifacts")
    with_file, data = registered(log, {"demos": [1]}, carry_bytes=False, version="1.0.0")
    artifacts.put(data)
    assert version_artifact(log, with_file, artifacts).state == {"demos": [1]}

    in_log, _ = registered(log, {"demos": [2]}, carry_bytes=True, version="1.1.0")
    assert not artifacts.has(in_log.artifact_digest)
    assert version_artifact(log, in_log, artifacts).state == {"demos": [2]}
    assert version_artifact(log, in_log).state == {"demos": [2]}  # no store at all: the log's copy

    nowhere, _ = registered(log, {"demos": [3]}, carry_bytes=False, version="1.2.0")
    with pytest.raises(ArtifactNotFound, match=nowhere.artifact_digest):
        version_artifact(log, nowhere, artifacts)


def test_a_corrupt_file_or_corrupt_bytes_never_load(log: EventStore, tmp_path: Path) -> None:
    artifacts = FileArtifactStore(tmp_path / "artifacts")
    version, data = registered(log, {"demos": [1]}, carry_bytes=True, version="1.0.0")
    artifacts.put(data)
    artifacts.path_for(version.artifact_digest).write_bytes(data.replace(b"[1]", b"[9]"))
    with pytest.raises(ArtifactCorrupt):  # not replaced by the log's good copy: the store is damaged
        version_artifact(log, version, artifacts)

    digest, _ = encode_artifact(SPEC, {"demos": [5]}, LMConfig())
    _, other = encode_artifact(SPEC, {"demos": [6]}, LMConfig())
    lying = pb.VersionRegistered(
        program="q", version="1.0.0", spec=pb.ProgramSpec(signature=SPEC.signature), artifact_digest=digest
    )
    lying.artifact = other  # bytes that do not hash to the digest they are registered under
    log.append("program-q", [new_event(lying)], None)
    with pytest.raises(ArtifactCorrupt):
        version_artifact(log, fold(log.read(0, 1000)).programs["q"].versions["1.0.0"], artifacts)


# ---------------------------------------------------------------------- through the optimizer


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[OptimizerClient, FileArtifactStore]]:
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data")
    thread = ServerThread(lambda: start(config))
    with OptimizerClient(thread.address) as client:
        yield client, FileArtifactStore(tmp_path / "data" / "artifacts")
    thread.stop()


def job(opt: OptimizerClient, k: int, must_beat: str = "") -> list[opb.OptimizationEvent]:
    params = Struct()
    params.update({"k": k})
    request = opb.StartOptimizationRequest(
        program="tickets",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        optimizer="LabeledFewShot",
        params=params,
        trainset=examples(TRAIN),
        valset=examples(VAL),
        must_beat=must_beat,
    )
    return list(opt.stub.StartOptimization(request))


def test_a_version_whose_file_is_gone_runs_from_the_log(
    served: tuple[OptimizerClient, FileArtifactStore],
) -> None:
    opt, artifacts = served
    weak = job(opt, 1)[-1].completed
    artifacts.path_for(weak.artifact_digest).unlink()

    report = list(opt.evaluate("tickets", weak.version, dataset=VAL))[-1].report
    assert report.score == pytest.approx(weak.final_score)  # same program, same examples
    assert opt.export_version("tickets", weak.version).artifact_digest == weak.artifact_digest
    # must_beat loads it the same way (it used to refuse: FAILED_PRECONDITION, the file missing)
    events = job(opt, 16, must_beat=weak.version)
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    assert events[-2].gate.must_beat == weak.version
    assert events[-2].gate.must_beat_score == pytest.approx(weak.final_score)


def test_a_corrupt_file_is_failed_precondition_naming_the_version(
    served: tuple[OptimizerClient, FileArtifactStore],
) -> None:
    opt, artifacts = served
    done = job(opt, 2)[-1].completed
    path = artifacts.path_for(done.artifact_digest)
    path.write_bytes(path.read_bytes() + b" ")
    head = opt.read_log(0, 1).head
    calls = [
        lambda: list(opt.evaluate("tickets", done.version, dataset=VAL)),
        lambda: opt.export_version("tickets", done.version),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert str(err.value.details()).startswith(f"version: tickets {done.version}: "), err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        job(opt, 16, must_beat=done.version)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(err.value.details()).startswith(f"must_beat: version {done.version}: ")
    assert opt.read_log(0, 1).head == head  # nothing appended
