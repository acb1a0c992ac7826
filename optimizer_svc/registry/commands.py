"""Registry and deployment commands: validate against the current state, then append.

Each command either appends one atomic batch to one stream (with that stream's expected
version) or raises a DspyopsError naming the field, having appended nothing. They run
through the one writer path (dspyops.commands), which also answers retried requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from dspyops.capture import check_policy
from dspyops.commands import Decision, Outcome
from dspyops.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, shown
from dspyops.ledger import Ledger
from dspyops.names import (
    check_alias,
    check_name,
    deployment_stream,
    parse_semver,
    program_stream,
)
from dspyops.proto import events_pb2 as pb
from dspyops.state import STATUS_NAMES, STATUS_VALUES, DeploymentState, ProgramState, State, VersionState

_WEIGHT_TOLERANCE = 1e-6
_REGISTER_ATTEMPTS = 50
_MAX_ROUTES = 64


@dataclass(frozen=True)
class RouteInput:
    version: str
    weight: float
    role: pb.RouteRole = pb.PRIMARY


def next_version(program: ProgramState | None, spec: pb.ProgramSpec) -> str:
    """Semver for a new optimization: 1.0.0 first; minor bump for the same module, signature
    and pipeline as the latest version; major bump when any of them changed."""
    if program is None or not program.versions:
        return "1.0.0"
    latest = max(program.versions.values(), key=lambda v: parse_semver("version", v.version))
    major, minor, _ = parse_semver("version", latest.version)
    same = (
        latest.spec.get("module", "") == spec.module
        and _norm(latest.spec.get("signature", "")) == _norm(spec.signature)
        # a pipeline's shape is its stages and outputs: another pipeline is another program
        and latest.spec.get("pipeline", {}) == MessageToDict(spec.pipeline, preserving_proto_field_name=True)
    )
    return f"{major}.{minor + 1}.0" if same else f"{major + 1}.0.0"


def _norm(signature: str) -> str:
    return " ".join(signature.split())


def registered_version(outcome: Outcome) -> VersionState:
    """The version a registration (or its retry) registered, as of right after its batch."""
    event = outcome.event
    assert isinstance(event, pb.VersionRegistered)
    return outcome.state.programs[event.program].versions[event.version]


def _program_in(state: State, name: str, field: str = "program") -> ProgramState:
    check_name(field, name)
    program = state.programs.get(name)
    if program is None:
        raise NotFound(field, f"no program named {name!r}")
    return program


def _deployment_in(state: State, name: str, field: str = "deployment") -> DeploymentState:
    check_name(field, name)
    deployment = state.deployments.get(name)
    if deployment is None:
        raise NotFound(field, f"no deployment named {name!r}")
    return deployment


class Registry:
    """Registry and deployment commands of the optimizer. Each is a decision on one folded
    state, carried out through the ledger's one writer path (dspyops.commands): `request`
    is the RPC's request when a client sent one, so a retry with its request_id is answered
    from the log. They return the command's Outcome; the server renders it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # ------------------------------------------------------------------ reads

    def program(self, name: str, field: str = "program") -> ProgramState:
        return _program_in(self.ledger.read_state(), name, field)

    def version(self, program_name: str, ref: str, field: str = "version") -> VersionState:
        return self._resolve(self.program(program_name), ref, field)

    @staticmethod
    def _resolve(program: ProgramState, ref: str, field: str = "version") -> VersionState:
        """A version of this very snapshot of the program (decisions and expected_version
        must come from the same state)."""
        if not ref:
            raise InvalidArgument(field, "is required (a semver such as 1.0.0 or an alias such as @champion)")
        version = program.resolve(ref)
        if version is None:
            raise NotFound(field, f"program {program.name!r} has no version or alias {shown(ref)}")
        return version

    def deployment(self, name: str, field: str = "deployment") -> DeploymentState:
        return _deployment_in(self.ledger.read_state(), name, field)

    # ------------------------------------------------------------------ commands

    def register(
        self,
        registered: pb.VersionRegistered,
        *,
        promote: bool,
        semver: Callable[[ProgramState | None], str] | None = None,
        existing: Callable[[ProgramState | None], str | None] | None = None,
        method: str = "",
        request: Message | None = None,
    ) -> Outcome:
        """Append VersionRegistered (and, when promoting, the demotion of the current
        production version) as one batch. `registered.version` is assigned here by `semver`
        (default: next_version) from the state the batch is appended on; when another
        registration wins the semver race, the decision is re-taken on fresh state.
        `existing`: a version that makes this registration moot (e.g. the one a job
        registered already); when it names one, nothing is appended (``Outcome.event`` None),
        decided on the same state, so a racing registration that wins is seen on the retry."""
        stream = program_stream(registered.program)

        def decide(state: State) -> Decision:
            program = state.programs.get(registered.program)
            if existing is not None and existing(program):
                return Decision()
            registered.version = semver(program) if semver else next_version(program, registered.spec)
            registered.status = pb.PRODUCTION if promote else registered.status or pb.DEVELOPMENT
            batch: list[Message] = [registered]
            if promote and program and program.production_version:
                batch.insert(
                    0,
                    self._status_event(
                        program.versions[program.production_version],
                        pb.DEPRECATED,
                        f"superseded by {registered.version}",
                    ),
                )
            return Decision(stream, batch, program.stream_version if program else 0)

        try:
            return self.ledger.run(method, request, decide, attempts=_REGISTER_ATTEMPTS)
        except Aborted:
            raise FailedPrecondition(
                "program", f"could not register a version of {registered.program!r}: too much contention"
            ) from None

    def register_version(
        self,
        registered: pb.VersionRegistered,
        *,
        promote: bool,
        existing: Callable[[ProgramState | None], str | None] | None = None,
    ) -> VersionState:
        """A job's result: `register` without a client request; the `existing` version
        instead when it names one."""
        outcome = self.register(registered, promote=promote, existing=existing)
        if outcome.event is None:
            assert existing is not None
            program = outcome.state.programs[registered.program]
            version = existing(program)
            assert version is not None
            return program.versions[version]
        return registered_version(outcome)

    def set_status(
        self,
        program_name: str,
        ref: str,
        status: pb.VersionStatus,
        reason: str,
        *,
        request: Message | None = None,
    ) -> Outcome:
        def decide(state: State) -> Decision:
            if status not in STATUS_NAMES:
                raise InvalidArgument(
                    "status", f"must be one of {', '.join(s.upper() for s in STATUS_NAMES.values())}"
                )
            program = _program_in(state, program_name)
            version = self._resolve(program, ref)
            if STATUS_NAMES[status] == version.status:
                return Decision()  # already there: nothing to record
            if version.status == "archived" and status == pb.PRODUCTION:
                raise FailedPrecondition(
                    "status", f"version {version.version} is archived; move it to staging first"
                )
            batch = []
            if status == pb.PRODUCTION and program.production_version:
                current = program.versions[program.production_version]
                batch.append(self._status_event(current, pb.DEPRECATED, f"superseded by {version.version}"))
            batch.append(self._status_event(version, status, reason))
            return Decision(program_stream(program_name), batch, program.stream_version)

        return self.ledger.run("SetVersionStatus", request, decide)

    def set_alias(
        self, program_name: str, alias: str, ref: str, *, request: Message | None = None
    ) -> Outcome:
        def decide(state: State) -> Decision:
            bare = check_alias("alias", alias)
            program = _program_in(state, program_name)
            version = self._resolve(program, ref)
            previous = program.aliases.get(bare, "")
            if previous == version.version:
                return Decision()
            event = pb.AliasSet(
                program=program_name, alias=bare, version=version.version, previous_version=previous
            )
            return Decision(program_stream(program_name), [event], program.stream_version)

        return self.ledger.run("SetAlias", request, decide)

    def create_deployment(self, name: str, program_name: str, *, request: Message | None = None) -> Outcome:
        def decide(state: State) -> Decision:
            check_name("deployment", name)
            program = _program_in(state, program_name)
            if name in state.deployments:
                raise AlreadyExists("deployment", f"a deployment named {name!r} exists already")
            batch: list[Message] = [pb.DeploymentCreated(deployment=name, program=program_name)]
            if program.production_version:  # start serving the production version right away
                batch.append(
                    pb.RoutesSet(
                        deployment=name,
                        routes=[pb.Route(version=program.production_version, weight=1.0, role=pb.PRIMARY)],
                        reason="initial route: production version",
                    )
                )
            # expected 0: the stream must not exist, which settles a creation race in the log itself
            return Decision(deployment_stream(name), batch, 0)

        return self.ledger.run("CreateDeployment", request, decide)

    def set_routes(
        self,
        name: str,
        routes: Sequence[RouteInput],
        expected_version: int | None,
        reason: str,
        *,
        request: Message | None = None,
    ) -> Outcome:
        def decide(state: State) -> Decision:
            deployment = _deployment_in(state, name)
            program = _program_in(state, deployment.program)
            resolved = self._validate_routes(program, routes)
            event = pb.RoutesSet(deployment=name, routes=resolved, reason=reason)
            expected = deployment.stream_version if expected_version is None else expected_version
            return Decision(deployment_stream(name), [event], expected)

        return self.ledger.run("SetRoutes", request, decide)

    def set_capture_policy(
        self,
        name: str,
        policy: pb.CapturePolicy,
        expected_version: int | None,
        reason: str,
        *,
        request: Message | None = None,
    ) -> Outcome:
        """The deployment's capture policy, whole (an empty policy: keep nothing more)."""

        def decide(state: State) -> Decision:
            deployment = _deployment_in(state, name)
            check_policy(policy)
            event = pb.CapturePolicySet(deployment=name, policy=policy, reason=reason)
            expected = deployment.stream_version if expected_version is None else expected_version
            return Decision(deployment_stream(name), [event], expected)

        return self.ledger.run("SetCapturePolicy", request, decide)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _status_event(
        version: VersionState, status: pb.VersionStatus, reason: str
    ) -> pb.VersionStatusChanged:
        return pb.VersionStatusChanged(
            program=version.program,
            version=version.version,
            status=status,
            previous_status=STATUS_VALUES[version.status],
            reason=reason,
        )

    @staticmethod
    def _validate_routes(program: ProgramState, routes: Sequence[RouteInput]) -> list[pb.Route]:
        if not routes:
            raise InvalidArgument("routes", "at least one route is required")
        if len(routes) > _MAX_ROUTES:
            raise InvalidArgument("routes", f"at most {_MAX_ROUTES} routes, got {len(routes)}")
        resolved: list[pb.Route] = []
        seen: set[str] = set()
        primary_total = 0.0
        for i, route in enumerate(routes):
            field = f"routes[{i}]"
            if route.role not in (pb.ROUTE_ROLE_UNSPECIFIED, pb.PRIMARY, pb.SHADOW):
                raise InvalidArgument(f"{field}.role", f"unknown role {route.role}")
            role = pb.PRIMARY if route.role == pb.ROUTE_ROLE_UNSPECIFIED else route.role
            if not math.isfinite(route.weight) or route.weight < 0 or route.weight > 1:
                raise InvalidArgument(f"{field}.weight", f"must be a number in [0, 1], got {route.weight}")
            version = program.resolve(route.version) if route.version else None
            if version is None:
                raise NotFound(
                    f"{field}.version",
                    f"program {program.name!r} has no version or alias {shown(route.version)}",
                )
            if version.status == "archived":
                raise FailedPrecondition(f"{field}.version", f"version {version.version} is archived")
            if version.version in seen:
                raise InvalidArgument(f"{field}.version", f"version {version.version} appears twice")
            seen.add(version.version)
            if role == pb.PRIMARY:
                primary_total += route.weight
            resolved.append(pb.Route(version=version.version, weight=route.weight, role=role))
        if abs(primary_total - 1.0) > _WEIGHT_TOLERANCE:
            raise InvalidArgument("routes", f"weights of primary routes must sum to 1, got {primary_total:g}")
        return resolved
