"""Evaluate and CompareVersions: run a program over a dataset, build the report, test pairs.

`prepare_*` validate a request against the folded state (before any LM call, appending
nothing); `run_evaluation` runs in a worker thread and reports progress through a callback;
`stream_evaluation` is the RPC's body: it runs the evaluation off the event loop and streams
its progress through the loop as it happens, then the report.

Evaluations run in their own bounded executor (``EvaluationPool``, ``--max-evaluations``;
beyond the cap RESOURCE_EXHAUSTED), never in asyncio's default one that the RPC handlers'
``asyncio.to_thread`` calls share: 8 evaluations against a stalling LM used to take all 6
of its threads here, and ListPrograms and SetRoutes timed out for minutes. An evaluation
whose client has gone (a cancelled stream, a passed deadline) stops at its next LM or
module call (a ``CancelToken`` checked by ``CancelCallback``) and records nothing.

Evaluation never crashes on a bad prediction: a module or metric that raises scores 0 for
that example, and the error is counted (and shown per example when results are asked for).

Per-class metrics (one output field): labels are compared after collapsing whitespace and
case folding (the same normalisation as ``exact_match``); macro averages are taken over
every label seen as expected or predicted, with 0 for an undefined ratio (scikit-learn's
``average="macro", zero_division=0``).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dspy
import structlog
from dspy.utils.callback import BaseCallback
from dspy.utils.usage_tracker import UsageTracker

from dspyops.artifacts import Artifact, ArtifactCorrupt, ArtifactNotFound, ArtifactStore, decode_artifact
from dspyops.caps import Cap, Slot
from dspyops.connections import OFFLINE_ONLY, Connections, ResolvedLM
from dspyops.datasets import dataset_digest
from dspyops.errors import Aborted, FailedPrecondition, InvalidArgument, Unavailable
from dspyops.eventlog import EventStore
from dspyops.events import decode
from dspyops.jsondepth import MAX_JSON_DEPTH, too_deep
from dspyops.lm import lm_from_resolved
from dspyops.metrics import Metric, resolve_metric
from dspyops.names import program_stream
from dspyops.programs import ProgramSpec, load_program
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub
from dspyops.state import ProgramState, VersionState
from optimizer_svc.cancel import CancelCallback, CancelToken, JobCancelled
from optimizer_svc.registry import Registry
from optimizer_svc.requests import examples_from_proto, resolve_lm, spec_from_proto
from optimizer_svc.tqdm_race import install as _tolerate_concurrent_bars

_tolerate_concurrent_bars()  # several jobs and evaluations share this process

MAX_THREADS = 32
DEFAULT_MAX_EVALUATIONS = 4  # like the job cap (--max-jobs)
MAX_STATE_JSON_BYTES = 8 * 1024 * 1024
ALPHA = 0.05
_PROGRESS_EVENTS = 100  # at most about this many progress events per evaluation
_RECORD_ATTEMPTS = 20


# ---------------------------------------------------------------------- loading


def _version_artifact(store: EventStore, artifacts: ArtifactStore, version: VersionState) -> Artifact:
    """The version's artifact from the artifact store, or else from its VersionRegistered
    event (which carries the bytes); verified against the digest either way."""
    try:
        return artifacts.load(version.artifact_digest)
    except ArtifactNotFound:
        pass
    except ArtifactCorrupt as exc:
        raise FailedPrecondition("version", f"{version.program} {version.version}: {exc}") from None
    events = store.read(after_position=version.registered_position - 1, limit=1)
    payload = decode(events[0]) if events else None
    if not isinstance(payload, pb.VersionRegistered) or not payload.artifact:
        raise FailedPrecondition(
            "version", f"{version.program} {version.version}: artifact {version.artifact_digest} is missing"
        )
    try:
        return decode_artifact(payload.artifact, version.artifact_digest)
    except (ArtifactCorrupt, ValueError) as exc:
        raise FailedPrecondition("version", f"{version.program} {version.version}: {exc}") from None


def _what(version: VersionState) -> str:
    return f"version {version.version} of {version.program!r}"


def load_version_artifact(registry: Registry, artifacts: ArtifactStore, version: VersionState) -> Artifact:
    return _version_artifact(registry.ledger.store, artifacts, version)


def parse_state_json(data: bytes, field: str = "state_json") -> dict[str, Any]:
    if not data:
        raise InvalidArgument(field, "is required: the JSON that program.save('x.json') wrote")
    if len(data) > MAX_STATE_JSON_BYTES:
        raise InvalidArgument(field, f"at most {MAX_STATE_JSON_BYTES} bytes, got {len(data)}")
    if too_deep(data):  # json.loads recurses: measure first (dspyops.jsondepth)
        raise InvalidArgument(field, f"nests arrays/objects deeper than {MAX_JSON_DEPTH} levels")
    try:
        state = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(field, f"is not UTF-8 JSON: {exc}") from None
    if not isinstance(state, dict):
        raise InvalidArgument(field, f"must be a JSON object, got {type(state).__name__}")
    return state


def build_program(spec: ProgramSpec, state: dict[str, Any], field: str = "state_json") -> dspy.Module:
    try:
        return load_program(spec, state)
    except ValueError as exc:
        raise InvalidArgument(field, str(exc).removeprefix("state: ")) from None


def metric_from_request(name: str, allowed_modules: Collection[str]) -> tuple[str, Metric]:
    name = name or "exact_match"
    try:
        return name, resolve_metric(name, allowed_modules)
    except ValueError as exc:
        raise InvalidArgument("metric", str(exc).removeprefix("metric: ")) from None


def dataset_from_request(
    inline: Sequence[pb.Example],
    ref: opb.DatasetRef | None,
    spec: ProgramSpec,
    datasets_dir: Path | None,
    field: str = "dataset",
) -> list[dspy.Example]:
    ref_field = f"{field}_ref"
    if ref is not None and inline:
        raise InvalidArgument(field, f"give either {field} or {ref_field}, not both")
    if ref is not None:
        try:
            from dspyops.datarefs import resolve_dataset_ref
        except ImportError:
            raise FailedPrecondition(
                ref_field, "dataset references are not supported by this server"
            ) from None
        examples = resolve_dataset_ref(datasets_dir, ref, spec, ref_field)
    else:
        examples = examples_from_proto(inline, spec, field)
    if not examples:
        raise InvalidArgument(field, f"at least one example is required (inline {field} or {ref_field})")
    return examples


# ---------------------------------------------------------------------- plans


@dataclass
class Target:
    """What to run: a registered version or a spec + state."""

    spec: ProgramSpec
    state: dict[str, Any]
    lm: ResolvedLM  # checked against the server's connections before any example runs
    program: str = ""
    version: str = ""
    artifact_digest: str = ""

    def module(self) -> dspy.Module:
        return build_program(self.spec, self.state, "version" if self.version else "state_json")


@dataclass
class EvaluationPlan:
    target: Target
    dataset: list[dspy.Example]
    metric_name: str
    metric: Metric
    num_threads: int
    include_results: bool


def _threads(value: int) -> int:
    if value == 0:
        return 1
    if not 1 <= value <= MAX_THREADS:
        raise InvalidArgument("num_threads", f"must be in [1, {MAX_THREADS}], got {value}")
    return value


def prepare_evaluation(
    request: opb.EvaluateRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    allowed_metric_modules: Collection[str],
    datasets_dir: Path | None,
    connections: Connections | None = None,
) -> EvaluationPlan:
    connections = connections or OFFLINE_ONLY
    has_version_ref = bool(request.program or request.version)
    has_spec = request.HasField("spec") or bool(request.state_json)
    if has_version_ref and has_spec:
        raise InvalidArgument("spec", "give either program + version, or spec + state_json, not both")
    if has_version_ref:
        if request.HasField("lm"):
            raise InvalidArgument("lm", "a registered version runs with its own LM; leave lm empty")
        version = registry.version(request.program, request.version)
        artifact = load_version_artifact(registry, artifacts, version)
        target = Target(
            spec=artifact.spec,
            state=artifact.state,
            lm=connections.resolve_stored(artifact.lm, _what(version)),
            program=version.program,
            version=version.version,
            artifact_digest=version.artifact_digest,
        )
    elif has_spec:
        if not request.HasField("spec"):
            raise InvalidArgument("spec", "is required with state_json")
        spec = spec_from_proto(request.spec)
        lm = resolve_lm(request.lm, "lm", connections)
        target = Target(spec=spec, state=parse_state_json(request.state_json), lm=lm)
    else:
        raise InvalidArgument("program", "name a registered program and version, or give spec + state_json")
    target.module()  # refuse a state that does not load before any example runs
    metric_name, metric = metric_from_request(request.metric, allowed_metric_modules)
    threads = _threads(request.num_threads)
    ref = request.dataset_ref if request.HasField("dataset_ref") else None
    dataset = dataset_from_request(request.dataset, ref, target.spec, datasets_dir)
    return EvaluationPlan(target, dataset, metric_name, metric, threads, request.include_results)


# ---------------------------------------------------------------------- running


class _Usage(UsageTracker, BaseCallback):
    """Counts LM calls (a callback) and tokens (the usage tracker) across worker threads."""

    def __init__(self) -> None:
        UsageTracker.__init__(self)
        self._lock = threading.Lock()
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> _Usage:
        return self  # DSPy deep-copies the tracker into its worker threads: keep one tally

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        with self._lock:
            self.input_tokens += _int(usage_entry.get("prompt_tokens"))
            self.output_tokens += _int(usage_entry.get("completion_tokens"))

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._lock:
            self.calls += 1


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@dataclass
class Outcome:
    """One example's run."""

    inputs: dict[str, str]
    expected: dict[str, str]
    predicted: dict[str, str] = field(default_factory=dict)
    score: float = 0.0
    error: str = ""
    latency_ms: float = 0.0


@dataclass
class RunResult:
    outcomes: list[Outcome]
    usage: pb.Usage


Progress = Callable[[int, int, float], None]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _score(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise TypeError(f"metric returned {value!r}, not a finite number")


def run_evaluation(
    target: Target,
    dataset: Sequence[dspy.Example],
    metric: Metric,
    num_threads: int = 1,
    progress: Progress | None = None,
    *,
    cancel: CancelToken | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> RunResult:
    """Run the target over the dataset (blocking; call it from a worker thread).

    A cancelled ``cancel`` token stops the run at its next module or LM call by raising
    JobCancelled (a BaseException: DSPy and the per-example ``except Exception`` below let
    it through). ``callbacks`` see every call too (the pool counts LM calls with one).
    """
    lm = lm_from_resolved(target.lm)
    outputs = target.spec.output_fields()
    usage = _Usage()
    # the cancel check goes last, so the callbacks before it still see the call start
    active = [usage, *callbacks, *([CancelCallback(cancel)] if cancel is not None else [])]
    modules = threading.local()
    lock = threading.Lock()
    done = 0
    total_score = 0.0
    every = max(1, len(dataset) // _PROGRESS_EVENTS)

    def one(example: dspy.Example) -> Outcome:
        nonlocal done, total_score
        inputs = {k: _text(v) for k, v in example.inputs().items()}
        outcome = Outcome(inputs=inputs, expected={k: _text(example[k]) for k in outputs if k in example})
        if cancel is not None:
            cancel.check()
        start = time.perf_counter()
        try:
            module = getattr(modules, "module", None)
            if module is None:  # one module per thread: modules are not thread-safe to share
                module = modules.module = target.module()
            with dspy.context(lm=lm, callbacks=active, usage_tracker=usage):
                prediction = module(**example.inputs())
            outcome.latency_ms = (time.perf_counter() - start) * 1000
            outcome.predicted = {k: _text(prediction[k]) for k in outputs if prediction.get(k) is not None}
            outcome.score = _score(metric(example, prediction, None))
        except Exception as exc:  # a failing module or metric scores 0, it never ends the run
            outcome.latency_ms = outcome.latency_ms or (time.perf_counter() - start) * 1000
            outcome.score = 0.0
            # scrubbed before it is cut: a provider's error may echo the request's key
            outcome.error = scrub(f"{type(exc).__name__}: {exc}")[:2000]
        with lock:
            done += 1
            total_score += outcome.score
            if progress is not None and (done % every == 0 or done == len(dataset)):
                progress(done, len(dataset), total_score / done)
        return outcome

    if num_threads <= 1:
        outcomes = [one(example) for example in dataset]
    else:
        with ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="evaluate") as pool:
            outcomes = list(pool.map(one, dataset))
    cost = sum(float(entry.get("cost") or 0.0) for entry in lm.history)
    if not cost and target.lm.prices:  # the provider reported none: the connection's prices
        cost = target.lm.prices.cost(usage.input_tokens, usage.output_tokens)
    return RunResult(
        outcomes,
        pb.Usage(
            lm_calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=cost,
        ),
    )


# ---------------------------------------------------------------------- report


def _label(text: str) -> str:
    return " ".join(text.split()).casefold()


def class_metrics(expected: Sequence[str], predicted: Sequence[str | None]) -> list[pb.ClassMetrics]:
    """Per-label precision, recall, F1 and support; a None prediction (an error) only misses."""
    truth = [_label(e) for e in expected]
    guesses = [None if p is None else _label(p) for p in predicted]
    labels = sorted(set(truth) | {g for g in guesses if g is not None})
    result = []
    for label in labels:
        tp = sum(1 for t, g in zip(truth, guesses, strict=True) if t == label and g == label)
        predicted_n = sum(1 for g in guesses if g == label)
        support = sum(1 for t in truth if t == label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result.append(
            pb.ClassMetrics(label=label, precision=precision, recall=recall, f1=f1, support=support)
        )
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def build_report(plan: EvaluationPlan, run: RunResult, *, include_results: bool) -> pb.EvaluationReport:
    outcomes = run.outcomes
    n = len(outcomes)
    scores = [o.score for o in outcomes]
    report = pb.EvaluationReport(
        program=plan.target.program,
        version=plan.target.version,
        metric=plan.metric_name,
        dataset_digest=dataset_digest(plan.dataset),
        examples=n,
        score=sum(scores) / n if n else 0.0,
        accuracy=sum(1 for s in scores if s >= 1.0) / n if n else 0.0,
        latency_p50_ms=percentile([o.latency_ms for o in outcomes], 50),
        latency_p95_ms=percentile([o.latency_ms for o in outcomes], 95),
        usage=run.usage,
        errors=sum(1 for o in outcomes if o.error),
    )
    outputs = plan.target.spec.output_fields()
    if len(outputs) == 1 and n:
        key = outputs[0]
        per_class = class_metrics(
            [o.expected.get(key, "") for o in outcomes], [o.predicted.get(key) for o in outcomes]
        )
        report.per_class.extend(per_class)
        if per_class:
            report.macro_precision = sum(c.precision for c in per_class) / len(per_class)
            report.macro_recall = sum(c.recall for c in per_class) / len(per_class)
            report.macro_f1 = sum(c.f1 for c in per_class) / len(per_class)
    if include_results:
        report.results.extend(
            pb.ExampleResult(
                inputs=o.inputs,
                expected=o.expected,
                predicted=o.predicted,
                score=o.score,
                error=o.error,
                latency_ms=o.latency_ms,
            )
            for o in outcomes
        )
    return report


def record_evaluation(registry: Registry, report: pb.EvaluationReport, artifact_digest: str) -> None:
    """Append EvaluationRecorded (no per-example results) to program-<name>.

    The expected stream version comes from the same folded state that shows the version
    still exists with the evaluated artifact; a concurrent append re-reads and retries.
    """
    summary = pb.EvaluationReport()
    summary.CopyFrom(report)
    del summary.results[:]
    event = pb.EvaluationRecorded(program=report.program, version=report.version, report=summary)
    for attempt in range(_RECORD_ATTEMPTS):
        program: ProgramState = registry.program(report.program)
        version = program.versions.get(report.version)
        if version is None or version.artifact_digest != artifact_digest:
            raise FailedPrecondition(
                "version", f"{report.program} {report.version} changed during the evaluation"
            )
        try:
            registry.ledger.append(program_stream(report.program), [event], program.stream_version)
            return
        except Aborted:
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise FailedPrecondition("program", f"could not record the evaluation of {report.program!r}: contention")


def evaluate_blocking(
    plan: EvaluationPlan,
    registry: Registry,
    progress: Progress | None,
    cancel: CancelToken | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> pb.EvaluationReport:
    run = run_evaluation(
        plan.target, plan.dataset, plan.metric, plan.num_threads, progress, cancel=cancel, callbacks=callbacks
    )
    report = build_report(plan, run, include_results=plan.include_results)
    if plan.target.version:
        if cancel is not None:
            cancel.check()  # a client that left during the run gets nothing recorded
        record_evaluation(registry, report, plan.target.artifact_digest)
    return report


# ---------------------------------------------------------------------- the executor

T = TypeVar("T")


class EvaluationCancelled(Unavailable):
    """An evaluation stopped before its end: its client went away, or the server is stopping."""

    def __init__(self, reason: str) -> None:
        super().__init__("", f"the evaluation was stopped: {reason}")


class _LMCalls(BaseCallback):
    """Counts the LM calls every evaluation of a pool made, cancelled ones included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._lock:
            self.calls += 1


class EvaluationPool:
    """The bounded executor of Evaluate and CompareVersions.

    ``admit`` takes one of ``max_running`` slots or raises ResourceExhausted; the executor
    has exactly that many threads, so an admitted evaluation starts at once and nothing
    queues. A slot is released when the evaluation's thread is done, not when its RPC ends:
    a client that cancels and retries cannot pile up threads still finishing an LM call.
    """

    def __init__(self, max_running: int = DEFAULT_MAX_EVALUATIONS) -> None:
        self.cap = Cap("evaluations", max_running, flags="--max-evaluations")
        self._executor = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="evaluation")
        self._lock = threading.Lock()
        self._tokens: set[CancelToken] = set()
        self._lm_calls = _LMCalls()

    @property
    def running(self) -> int:
        """Evaluations whose thread has not finished yet."""
        return self.cap.in_use

    @property
    def lm_calls(self) -> int:
        """LM calls made by this pool's evaluations so far."""
        return self._lm_calls.calls

    def admit(self) -> Slot:
        return self.cap.acquire()

    async def run(self, slot: Slot, work: Callable[[CancelToken, Sequence[BaseCallback]], T]) -> T:
        """Run ``work(token, callbacks)`` in the pool; it owns ``slot`` from here on. If the
        awaiting task is cancelled (the RPC ended), the token stops the work at its next call."""
        token = CancelToken()
        context = contextvars.copy_context()  # the caller's actor, for what the work appends

        def call() -> T:
            try:
                return context.run(work, token, [self._lm_calls])
            except JobCancelled as exc:  # keep BaseExceptions out of asyncio
                raise EvaluationCancelled(exc.reason) from None

        def done(_: Future[T]) -> None:
            with self._lock:
                self._tokens.discard(token)
            slot.release()

        with self._lock:
            self._tokens.add(token)
        try:
            future = self._executor.submit(call)
        except BaseException:
            done(Future())
            raise
        future.add_done_callback(done)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            token.cancel("the client went away")
            structlog.get_logger().info("evaluation_cancelled", reason="the client went away")
            raise

    def shutdown(self) -> None:
        """Stop every running evaluation at its next call; do not wait for them."""
        with self._lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.cancel("the server is stopping")
        self._executor.shutdown(wait=False, cancel_futures=True)


async def stream_evaluation(
    request: opb.EvaluateRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    allowed_metric_modules: Collection[str],
    datasets_dir: Path | None,
    pool: EvaluationPool,
    connections: Connections | None = None,
) -> AsyncIterator[opb.EvaluationEvent]:
    """Validate, then run in the evaluation pool; progress is handed to the loop as it happens."""
    slot = pool.admit()
    try:
        plan = await asyncio.to_thread(
            prepare_evaluation,
            request,
            registry,
            artifacts,
            allowed_metric_modules,
            datasets_dir,
            connections,
        )
    except BaseException:
        slot.release()
        raise
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[opb.EvaluationEvent] = asyncio.Queue()

    def progress(done: int, total: int, running: float) -> None:
        event = opb.EvaluationEvent(
            progress=opb.EvaluationProgress(done=done, total=total, running_score=running)
        )
        loop.call_soon_threadsafe(queue.put_nowait, event)

    # A client that goes away cancels this generator; `task` is then cancelled too, which
    # stops the run at its next LM call (and records nothing).
    task = asyncio.ensure_future(
        pool.run(slot, lambda token, callbacks: evaluate_blocking(plan, registry, progress, token, callbacks))
    )
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            try:
                finished, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter in finished:
                yield getter.result()
                continue
            break
        while not queue.empty():  # progress handed over just before the run ended
            yield queue.get_nowait()
        report = await task
    finally:
        if not task.done():
            task.cancel()
    yield opb.EvaluationEvent(report=report)


# ---------------------------------------------------------------------- comparison


@dataclass
class PairedTest:
    test: str
    p_value: float
    a_only: int
    b_only: int


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """McNemar's exact test (binomial on the discordant pairs) when every score is 0 or 1,
    else the Wilcoxon signed-rank test (zero differences dropped; all zero: p = 1)."""
    from scipy import stats

    a_only = sum(1 for x, y in zip(a, b, strict=True) if x > y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y > x)
    if all(s in (0.0, 1.0) for s in (*a, *b)):
        discordant = a_only + b_only
        p = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
        return PairedTest("mcnemar", min(1.0, p), a_only, b_only)
    if a_only + b_only == 0:
        return PairedTest("wilcoxon", 1.0, 0, 0)
    try:
        p = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    except ValueError:
        p = 1.0
    return PairedTest("wilcoxon", 1.0 if math.isnan(p) else min(1.0, p), a_only, b_only)


def verdict(score_a: float, score_b: float, p_value: float, alpha: float = ALPHA) -> str:
    if p_value < alpha and score_a != score_b:
        return "a better" if score_a > score_b else "b better"
    return "no significant difference"


def compare_versions(
    request: opb.CompareVersionsRequest,
    registry: Registry,
    artifacts: ArtifactStore,
    allowed_metric_modules: Collection[str],
    datasets_dir: Path | None,
    connections: Connections | None = None,
    cancel: CancelToken | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> opb.VersionComparison:
    """Both versions of one program snapshot, on the same examples (blocking)."""
    connections = connections or OFFLINE_ONLY
    program = registry.program(request.program)
    va = Registry._resolve(program, request.a, "a")
    vb = Registry._resolve(program, request.b, "b")
    targets = []
    for v in (va, vb):
        artifact = load_version_artifact(registry, artifacts, v)
        lm = connections.resolve_stored(artifact.lm, _what(v))
        targets.append(Target(artifact.spec, artifact.state, lm, v.program, v.version, v.artifact_digest))
    for target, name in zip(targets, ("a", "b"), strict=True):
        build_program(target.spec, target.state, name)
    _, metric = metric_from_request(request.metric, allowed_metric_modules)
    if targets[0].spec.input_fields() != targets[1].spec.input_fields() or (
        targets[0].spec.output_fields() != targets[1].spec.output_fields()
    ):
        raise FailedPrecondition("b", f"{vb.version} has other fields than {va.version}: not comparable")
    ref = request.dataset_ref if request.HasField("dataset_ref") else None
    dataset = dataset_from_request(request.dataset, ref, targets[0].spec, datasets_dir)
    scores = [
        [o.score for o in run_evaluation(t, dataset, metric, cancel=cancel, callbacks=callbacks).outcomes]
        for t in targets
    ]
    test = paired_test(scores[0], scores[1])
    n = len(dataset)
    score_a, score_b = sum(scores[0]) / n, sum(scores[1]) / n
    return opb.VersionComparison(
        a=va.version,
        b=vb.version,
        examples=n,
        score_a=score_a,
        score_b=score_b,
        test=test.test,
        p_value=test.p_value,
        a_only=test.a_only,
        b_only=test.b_only,
        verdict=verdict(score_a, score_b, test.p_value),
    )
