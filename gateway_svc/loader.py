"""Artifact -> a callable dspy.Module with its own LM, built once per artifact digest.

Programs are rebuilt from their JSON artifact (spec + DSPy saved state + LM config), the
digest verified first; no pickle is involved. Each module gets its LM with set_lm, so
concurrent requests for different versions never share DSPy's global settings.

The version's LM connection is resolved by name against this gateway's connections: a
connection this gateway lacks is FAILED_PRECONDITION naming the version and the
connection, and the key is this gateway's, read when it started.

User code (a user module class, ReAct tools) is imported only from this gateway's
``--program-modules``, and the sha256 of each source file is compared with what the
version recorded at registration: a difference is FAILED_PRECONDITION naming the version
and both digests, unless the gateway runs with ``--allow-code-drift``; then the prediction
is served and its record says which code drifted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field

import dspy

from dspyops.artifacts import decode_artifact
from dspyops.connections import OFFLINE_ONLY, Connections, Prices
from dspyops.errors import FailedPrecondition
from dspyops.lm import LMConfig, lm_from_resolved
from dspyops.programs.build import load_program
from dspyops.programs.code import code_identity
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.usermodules import forward_inputs
from dspyops.state import State, VersionState
from dspyops.tracing import module_names
from gateway_svc.prompt_cache import FormatOnce, format_once

_Key = tuple[str, tuple[tuple[str, str], ...]]  # artifact digest, the lineage's corpus digests


@dataclass(frozen=True)
class LoadedProgram:
    digest: str
    spec: ProgramSpec
    module: dspy.Module
    lm_config: LMConfig
    inputs: tuple[str, ...]  # parsed once: signature parsing is too slow for every request
    outputs: tuple[str, ...]  # () for a user module: every field its Prediction carries
    code_digests: Mapping[str, str]  # module -> sha256 of the source file this gateway loaded
    names: Mapping[int, str]  # id(module) -> its name in the program, for traces (walked once)
    predictors: tuple[str, ...] = ()  # named_predictors() names: the stages ExplainPrediction lists
    connection: str = ""  # the connection and model this gateway runs the version with
    model: str = ""
    prices: Prices = field(default_factory=Prices)  # the connection's: costs calls reported without one
    adapter: FormatOnce = field(default_factory=lambda: FormatOnce(()))  # its prompts' constant part, once


def code_drift(loaded: LoadedProgram, recorded: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Modules whose loaded source differs from the version's record: module -> both digests."""
    modules = sorted(set(recorded) | set(loaded.code_digests))
    return {
        m: {"recorded": recorded.get(m, ""), "loaded": loaded.code_digests.get(m, "")}
        for m in modules
        if recorded.get(m, "") != loaded.code_digests.get(m, "")
    }


class ProgramCache:
    def __init__(
        self,
        connections: Connections | None = None,
        programs: ProgramContext = NO_CONTEXT,
        allow_code_drift: bool = False,
        keep_idle: int = 4,
    ) -> None:
        """``keep_idle``: how many programs that stopped serving stay loaded (the most recent
        ones), so a route back (a rollback, an A/B flip) does not wait for a load."""
        self.connections = connections or OFFLINE_ONLY
        self.programs = programs
        self.allow_code_drift = allow_code_drift
        self.keep_idle = keep_idle
        self.loads = 0  # programs loaded since start, again or not (the churn the keep avoids)
        # by artifact and the corpus digests its lineage recorded (a Retrieve stage's index)
        self._loaded: dict[_Key, LoadedProgram] = {}
        # the loaded ones that serve nothing now, oldest first (in the order they stopped)
        self._idle: dict[_Key, None] = {}
        self._lock = threading.Lock()

    def get(
        self,
        digest: str,
        artifact: bytes | Callable[[], bytes],
        what: str = "",
        corpora: Mapping[str, str] | None = None,
    ) -> LoadedProgram:
        """``artifact``: the bytes, or what reads them (called only when the program is not
        loaded yet); ``what`` names the version in a refusal, e.g. "version 1.2.0 of 'tickets'";
        ``corpora`` is its ``Lineage.corpora`` (stage -> digest): what its Retrieve stages search."""
        key = (digest, tuple(sorted((corpora or {}).items())))
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is None:
                what = what or f"the version with artifact {digest[:12]}"
                data = artifact() if callable(artifact) else artifact
                loaded = self._load(digest, data, what, corpora or {})
                self._loaded[key] = loaded
                self.loads += 1
        return loaded

    def __len__(self) -> int:
        return len(self._loaded)

    def retain(self, digests: Set[str]) -> int:
        """Unload the programs whose artifact is not in ``digests`` (those serving now) but the
        ``keep_idle`` that stopped serving last; how many were dropped. A request already
        running one keeps its reference; the next request that needs it loads it again."""
        with self._lock:
            idle = self._idle
            for key in [key for key in idle if key[0] in digests]:
                del idle[key]  # serves again
            for key in self._loaded:
                if key[0] not in digests and key not in idle:
                    idle[key] = None  # stopped serving now: the newest idle
            dropped = list(idle)[: max(0, len(idle) - self.keep_idle)]
            for key in dropped:
                del self._loaded[key]
                del idle[key]
        return len(dropped)

    def check_code(self, loaded: LoadedProgram, recorded: Mapping[str, str], what: str) -> str:
        """ "" when the code is the version's; the drift as JSON when ``--allow-code-drift``
        lets it through; FAILED_PRECONDITION naming the version and both digests otherwise."""
        drift = code_drift(loaded, recorded)
        if not drift:
            return ""
        if not self.allow_code_drift:
            module, digests = next(iter(drift.items()))
            raise FailedPrecondition(
                "deployment",
                f"{what} was registered with {module} at sha256 {digests['recorded'] or '(none)'}, "
                f"this gateway loads sha256 {digests['loaded'] or '(none)'}: refused "
                "(deploy the code the version was built with, register a new version, or start the "
                "gateway with --allow-code-drift)",
            )
        return json.dumps(drift, sort_keys=True)

    def _load(self, digest: str, artifact: bytes, what: str, corpora: Mapping[str, str]) -> LoadedProgram:
        decoded = decode_artifact(artifact, digest)
        resolved = self.connections.resolve_stored(decoded.lm, what)  # before building anything
        programs = self.programs.for_version(corpora, decoded.spec.stage_corpora())
        module = load_program(decoded.spec, decoded.state, programs)
        module.set_lm(lm_from_resolved(resolved))
        spec = decoded.spec
        return LoadedProgram(
            digest=digest,
            spec=spec,
            module=module,
            lm_config=decoded.lm,
            inputs=tuple(forward_inputs(module) if spec.is_user_module else spec.input_fields()),
            outputs=tuple(spec.output_fields()),
            code_digests=code_identity(spec).digests,
            names=module_names(module),
            predictors=tuple(name for name, _ in module.named_predictors()),
            connection=resolved.connection.name,
            model=resolved.model,
            prices=resolved.prices,
            adapter=format_once(module),
        )


def serving_digests(state: State) -> set[str]:
    """The artifacts of every version that can serve or judge now: each deployment's routes
    (primaries and shadows), experiment arms, canary baseline and candidate, and its
    evaluators' judge versions. Anything else a gateway loaded (an as-of replay, a version
    routed before) is unloaded when the state moves on (gateway_svc.predict), but the few
    that stopped serving last (``ProgramCache.keep_idle``)."""
    return set(serving_versions(state))


def serving_versions(state: State) -> dict[str, VersionState]:
    """``serving_digests``, each with one version that has that artifact."""
    versions: dict[str, VersionState] = {}

    def add(program: str, version: str) -> None:
        found = state.programs.get(program)
        served = found.versions.get(version) if found is not None else None
        if served is not None:
            versions.setdefault(served.artifact_digest, served)

    for deployment in state.deployments.values():
        for route in deployment.routes:
            add(deployment.program, route.version)
        if deployment.experiment is not None:
            for arm in deployment.experiment.arms:
                add(deployment.program, arm)
        if deployment.canary is not None:
            add(deployment.program, deployment.canary.baseline)
            add(deployment.program, deployment.canary.candidate)
        for evaluator in deployment.evaluators:
            add(evaluator.judge_program, evaluator.judge_version)
    return versions
