"""Folded state -> the registry and deployment messages the optimizer's RPCs return."""

from __future__ import annotations

from google.protobuf.json_format import ParseDict
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub
from dspyops.state import STATUS_VALUES, DeploymentState, ProgramState, VersionState
from dspyops.views import routes_proto


def version_view(version: VersionState, program: ProgramState) -> opb.ProgramVersion:
    stamp = Timestamp()
    stamp.FromMicroseconds(version.registered_at_us)
    message = opb.ProgramVersion(
        program=version.program,
        version=version.version,
        status=STATUS_VALUES[version.status],
        artifact_digest=version.artifact_digest,
        aliases=sorted(a for a, v in program.aliases.items() if v == version.version),
        registered_position=version.registered_position,
        registered_at=stamp,
    )
    ParseDict(dict(version.spec), message.spec)
    ParseDict(dict(version.lm), message.lm)
    message.lm.api_base = scrub(message.lm.api_base)  # userinfo of a version from before connections
    ParseDict(dict(version.lineage), message.lineage)
    return message


def program_view(program: ProgramState) -> opb.ProgramInfo:
    return opb.ProgramInfo(
        program=program.name,
        versions=list(program.versions),
        aliases=dict(program.aliases),
        production_version=program.production_version,
    )


def deployment_view(deployment: DeploymentState) -> opb.Deployment:
    view = opb.Deployment(
        deployment=deployment.name,
        program=deployment.program,
        routes=routes_proto(deployment.routes),
        stream_version=deployment.stream_version,
        log_position=deployment.changed_position,
    )
    if deployment.capture is not None:  # unset: nothing kept beyond the decision
        view.capture.CopyFrom(deployment.capture.to_proto())
    return view
