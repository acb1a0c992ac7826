"""A small real log for the integrity tests: program `tickets` 1.0.0 (a LabeledFewShot-like
artifact on the offline LM) served by deployment `web`, then `extra` route changes."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import dspy

from dspyops.artifacts import encode_artifact
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs import ProgramSpec, build_module, program_state
from dspyops.proto import events_pb2 as pb
from tests.harness import ticket_rows

SIGNATURE = "text -> label"


def write_log(path: Path, *, extra: int = 0, chain_key: bytes | None = None) -> int:
    """Writes the fixture into an empty log (created if absent), then `extra` route changes
    (only those when the log has events already); returns the head."""
    spec = ProgramSpec(module="Predict", signature=SIGNATURE)
    module = build_module(spec)
    module.demos = [dspy.Example(**row).with_inputs("text") for row in ticket_rows()[:8]]
    digest, artifact = encode_artifact(spec, program_state(module), LMConfig())
    registered = pb.VersionRegistered(
        program="tickets",
        version="1.0.0",
        spec=pb.ProgramSpec(module="Predict", signature=SIGNATURE),
        lm=pb.LMConfig(model="offline/nearest-demo", max_tokens=512),
        artifact_digest=digest,
        artifact=artifact,
        status=pb.PRODUCTION,
        lineage=pb.Lineage(optimizer="test-fixture"),
    )
    store = open_store(str(path), chain_key=chain_key)
    try:
        if store.head() == 0:
            store.append("program-tickets", [new_event(registered)], 0)
            created = pb.DeploymentCreated(deployment="web", program="tickets")
            store.append("deployment-web", [new_event(created), new_event(routes("setup"))], 0)
        for i in range(extra):
            store.append("deployment-web", [new_event(routes(f"change {i}"))], None, actor="ops")
        return store.head()
    finally:
        store.close()


def routes(reason: str) -> pb.RoutesSet:
    return pb.RoutesSet(
        deployment="web", routes=[pb.Route(version="1.0.0", weight=1.0, role=pb.PRIMARY)], reason=reason
    )


def tamper(path: Path, position: int, column: str, value: object) -> None:
    """Rewrite one stored column behind the services' backs, as someone with file access would."""
    with sqlite3.connect(path) as conn:
        assert (
            conn.execute(f"UPDATE events SET {column} = ? WHERE position = ?", (value, position)).rowcount
            == 1
        )
    conn.close()


def write_key(path: Path, key: bytes = b"0123456789abcdef0123456789abcdef") -> bytes:
    path.write_bytes(key + b"\n")
    os.chmod(path, 0o600)
    return key
