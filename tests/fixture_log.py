"""A log written directly with the store API, as the optimizer would have written it: a
program with real artifacts and a deployment serving it (no optimization job needed)."""

from __future__ import annotations

from pathlib import Path

import dspy

from dspyops.artifacts import encode_artifact
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs import ProgramSpec, build_module, program_state
from dspyops.proto import events_pb2 as pb
from tests.harness import ticket_rows


def write_log(path: Path, padding: int = 0, versions: int = 1) -> int:
    """Program `tickets` 1.0.0 (8 demos) served by deployment `web`, and `versions - 1` more
    versions 1.1.0, 1.2.0, ...; with `padding`, version 1.1.0's artifact also carries that
    many bytes of demos (one event of about that size). Returns the head."""
    spec = ProgramSpec(module="Predict", signature="text -> label")
    store = open_store(str(path))
    try:
        count = max(versions, 2 if padding else 1)
        for i, (version, size) in enumerate((f"1.{i}.0", padding if i == 1 else 0) for i in range(count)):
            module = build_module(spec)
            demos = [dspy.Example(**row).with_inputs("text") for row in ticket_rows()[:8]]
            if size:
                demos.append(dspy.Example(text="x" * size, label="padding").with_inputs("text"))
            module.demos = demos
            digest, artifact = encode_artifact(spec, program_state(module), LMConfig())
            registered = pb.VersionRegistered(
                program="tickets",
                version=version,
                spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
                lm=pb.LMConfig(model="offline/nearest-demo", max_tokens=512),
                artifact_digest=digest,
                artifact=artifact,
                status=pb.PRODUCTION,
                lineage=pb.Lineage(optimizer="test-fixture"),
            )
            store.append("program-tickets", [new_event(registered)], i)
        routes = pb.RoutesSet(
            deployment="web", routes=[pb.Route(version="1.0.0", weight=1.0, role=pb.PRIMARY)]
        )
        created = pb.DeploymentCreated(deployment="web", program="tickets")
        store.append("deployment-web", [new_event(created), new_event(routes)], 0)
        return store.head()
    finally:
        store.close()
