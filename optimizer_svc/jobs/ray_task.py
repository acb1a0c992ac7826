"""The Ray side of a job: what a Ray task is handed, what it streams back, and its body.

The task is handed a ``TaskJob``: the validated job (``JobSpec``: spec, LM configs, params,
datasets, budget, the must_beat program) with the server's objects taken out, the LM
connections as configuration (``ConnectionConfig``; the key values are read from the
worker's own environment, never shipped), the corpus names the job may search with the
digests they meant when it was handed over, the artifact store's path (where the corpus
documents are) and where the job's LM cache is (``lm_cache_url``: the log it belongs to;
the task opens it itself, see ``task_lm_cache``). Nothing of the gRPC server: this module
imports none of it (an import-linter contract says so).

``stream_job`` runs ``runner.run_job`` on a thread of the worker and yields, in order:
``TaskPlaced`` (where it runs), a ``TaskEvent`` per progress event (with the usage so far,
so a job cancelled mid-stream still says what it spent), and one ``TaskEnded``. The job
thread, not the task's own, runs DSPy: ``ray.cancel`` raises KeyboardInterrupt in the task's
thread, which trips the job's token, and the job stops at its next LM call as it does on
the thread executor. Budgets are checked here, in the task, as on the thread executor.
"""

from __future__ import annotations

import contextvars
import os
import queue
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound, ArtifactStore
from dspyops.connections import OFFLINE_ONLY, Connection, Connections
from dspyops.corpora import Corpora, CorpusUnavailable, decode_documents
from dspyops.eventlog.store import StoreUnavailable
from dspyops.lmcache import open_lm_cache
from dspyops.lmcache.cache import LMCache
from dspyops.lmcache.memory import MemoryLMCache
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.retrieve import Retrieve
from dspyops.scrub import learn_secrets, scrub
from optimizer_svc.cancel import CancelToken, JobCancelled
from optimizer_svc.jobs.runner import JobResult, JobSpec, run_job
from optimizer_svc.progress.events import JobEvent
from optimizer_svc.progress.usage import SharedUsageTracker, Usage

_log = structlog.get_logger()

# how long a cancelled task waits for its job thread to reach its next LM call and stop
CANCEL_JOIN_SECONDS = 30.0
POLL_SECONDS = 0.05  # how soon the task's thread sees a ray.cancel


@dataclass(frozen=True)
class ConnectionConfig:
    """The optimizer's LM connections as configuration: the file's entries and the request
    endpoints allowed, without the key values (each process reads its own environment)."""

    connections: tuple[Connection, ...] = ()
    allow_request_endpoints: frozenset[str] = frozenset()
    source: str = ""

    @classmethod
    def of(cls, connections: Connections) -> ConnectionConfig:
        found = (connections.get(name) for name in connections.names())
        entries = tuple(c for c in found if c is not None and not c.offline)
        return cls(entries, frozenset(connections.allowed_endpoints), connections.source)

    def load(self) -> Connections:
        loaded = Connections(
            self.connections, allow_request_endpoints=self.allow_request_endpoints, source=self.source
        )
        learn_secrets(loaded.secret_values())  # this process's key values are scrubbed here too
        return loaded


@dataclass(frozen=True)
class TaskJob:
    job: JobSpec  # its connections and programs are the placeholders; the task builds its own
    connections: ConnectionConfig
    artifacts_dir: str
    program_modules: frozenset[str] = frozenset()
    corpora: Mapping[str, str] = field(default_factory=dict)  # corpus name -> digest, at hand-over
    lm_cache_url: str = ""  # the log whose LM cache the job uses ("": a private one, in the task)


@dataclass(frozen=True)
class TaskPlaced:
    pid: int
    host: str


@dataclass(frozen=True)
class TaskEvent:
    event: JobEvent
    usage: Usage


@dataclass(frozen=True)
class TaskEnded:
    usage: Usage
    result: JobResult | None = None  # set when the job succeeded (its program left behind)
    cancelled: bool = False  # by its budget: ray.cancel ends the stream instead
    reason: str = ""
    budget: str = ""
    error: str = ""  # set when the job failed: scrubbed, at most 2000 characters


TaskMessage = TaskPlaced | TaskEvent | TaskEnded


def task_job(job: JobSpec, artifacts_dir: str, corpora: Mapping[str, str]) -> TaskJob:
    """The hand-over of a job to a task: the server's objects replaced by what rebuilds them."""
    return TaskJob(
        job=replace(job, connections=OFFLINE_ONLY, programs=NO_CONTEXT, lm_cache=None),
        connections=ConnectionConfig.of(job.connections),
        artifacts_dir=artifacts_dir,
        program_modules=job.programs.program_modules,
        corpora=dict(corpora),
        lm_cache_url=job.lm_cache.log_url if job.lm_cache is not None else "",
    )


def task_lm_cache(task: TaskJob) -> LMCache:
    """The job's LM cache, opened by the task: a PostgreSQL log's table (any node that reaches
    the log reaches it; the URL comes without its password, libpq takes it from the worker's
    environment), or the file beside a SQLite log (the same path on this node: a cluster on
    one machine, or a shared file system, as the artifact store's path already assumes).
    A memory log's cache is in the optimizer's process, out of reach: a private one. So is
    a cache that cannot be opened here: the job runs, paying for what it cannot replay."""
    if not task.lm_cache_url:
        return MemoryLMCache()
    try:
        return open_lm_cache(task.lm_cache_url)
    except StoreUnavailable as exc:
        _log.warning("lm_cache_unavailable", job_id=task.job.job_id, error=scrub(str(exc)))
        return MemoryLMCache()


def worker_programs(task: TaskJob) -> ProgramContext:
    """The task's ProgramContext: the optimizer's allowlist, and Retrieve stages over the
    digests the corpus names meant at hand-over, read (and verified) from the artifact store."""
    store = ArtifactStore(Path(task.artifacts_dir))

    def fetch(digest: str) -> bytes:
        try:
            data = store.get(digest)
        except (ArtifactNotFound, ArtifactCorrupt) as exc:
            where = f"the artifact store {task.artifacts_dir}"
            raise CorpusUnavailable(f"corpus {digest}: not in {where} ({exc})") from None
        decode_documents(data, digest)
        return data

    corpora = Corpora(fetch)

    def retriever(corpus: str, k: int) -> Retrieve:
        return corpora.factory(corpora.pinned(task.corpora))(corpus, k)

    return ProgramContext(program_modules=task.program_modules, retriever=retriever)


def stream_job(task: TaskJob) -> Iterator[TaskMessage]:
    """The body of the Ray generator task (optimizer_svc.jobs.ray_executor decorates it)."""
    lm_cache = task_lm_cache(task)
    job = replace(
        task.job, connections=task.connections.load(), programs=worker_programs(task), lm_cache=lm_cache
    )
    messages: queue.Queue[TaskMessage] = queue.Queue()
    cancel = CancelToken()
    usage = SharedUsageTracker()

    def emit(event: JobEvent) -> None:
        messages.put(TaskEvent(event, usage.snapshot()))

    def work() -> None:
        try:
            result = run_job(job, emit, cancel, usage)
        except JobCancelled as exc:
            messages.put(TaskEnded(usage.snapshot(), cancelled=True, reason=exc.reason, budget=exc.budget))
        except Exception as exc:
            message = scrub(f"{type(exc).__name__}: {exc}")[:2000]
            messages.put(TaskEnded(usage.snapshot(), error=message))
        else:
            messages.put(TaskEnded(result.usage, result=replace(result, program=None)))

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    thread.start()
    try:
        yield TaskPlaced(os.getpid(), socket.gethostname())
        while True:
            try:
                # not a blocking get: Ray's cancel is an asynchronous exception, which this
                # thread only sees while it runs Python code
                message = messages.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            yield message
            if isinstance(message, TaskEnded):
                return
    except BaseException:  # ray.cancel (KeyboardInterrupt), or the stream's consumer went away
        cancel.cancel("the Ray task was cancelled")
        thread.join(CANCEL_JOIN_SECONDS)
        raise
    finally:
        thread.join(1.0)  # it has put its last message: it is returning
        if not thread.is_alive():  # one still in an LM call (a cancel timed out) keeps it open
            lm_cache.close()


__all__ = [
    "ConnectionConfig",
    "TaskEnded",
    "TaskEvent",
    "TaskJob",
    "TaskMessage",
    "TaskPlaced",
    "stream_job",
    "task_job",
    "task_lm_cache",
    "worker_programs",
]
