"""Logs written directly with the store API, as the optimizer would have written them: a
program with real artifacts (offline LM) and a deployment serving it, with no optimization
job needed; and the tools the integrity tests use on them (tampering, chain keys)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import dspy

from dspyops.artifacts import encode_artifact
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from tests.support.harness import ticket_rows

SIGNATURE = "text -> label"


def write_log(
    path: Path,
    *,
    versions: int = 1,
    padding: int = 0,
    latency_ms: int = 0,
    extra: int = 0,
    chain_key: bytes | None = None,
) -> int:
    """Into an empty log (created if absent): program `tickets` 1.0.0 (8 demos) served by
    deployment `web` (positions 1-3 for one version), and `versions - 1` more versions 1.1.0,
    1.2.0, ... before the deployment. `padding`: version 1.1.0's artifact also carries that
    many bytes of demos (one event of about that size). `latency_ms`: the offline LM of every
    version answers after that long. Then `extra` route changes (actor "ops"; only those when
    the log has events already). Returns the head."""
    spec = ProgramSpec(module="Predict", signature=SIGNATURE)
    store = open_store(str(path), chain_key=chain_key)
    try:
        if store.head() == 0:
            count = max(versions, 2 if padding else 1)
            for i in range(count):
                module = build_module(spec)
                demos = [dspy.Example(**row).with_inputs("text") for row in ticket_rows()[:8]]
                if padding and i == 1:
                    demos.append(dspy.Example(text="x" * padding, label="padding").with_inputs("text"))
                module.demos = demos
                digest, artifact = encode_artifact(
                    spec, program_state(module), LMConfig(latency_ms=latency_ms)
                )
                registered = pb.VersionRegistered(
                    program="tickets",
                    version=f"1.{i}.0",
                    spec=pb.ProgramSpec(module="Predict", signature=SIGNATURE),
                    lm=pb.LMConfig(model="offline/nearest-demo", max_tokens=512),
                    artifact_digest=digest,
                    artifact=artifact,
                    status=pb.PRODUCTION,
                    lineage=pb.Lineage(optimizer="test-fixture"),
                )
                store.append("program-tickets", [new_event(registered)], i)
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
