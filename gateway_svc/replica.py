"""The gateway's read model: the fold of the log, kept current by tailing it.

Folding is pure, so a request that has taken a reference to `state` keeps a consistent
view while the tail task swaps in the next one. The state holds only each version's artifact
digest, which keeps it small and its hash cheap. The bytes (inside the VersionRegistered
events) are kept by digest beside the state: by a gateway on the log only for the versions
that serve now (so it serves them through an outage of a PostgreSQL log), any other being read
from the log when it is loaded (memory follows what serves, not what was ever registered);
by a gateway tailing an optimizer, which has no log to read them from, all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound, registered_artifact, version_artifact_bytes
from dspyops.eventlog import EventStore, StoredEvent, StoreUnavailable
from dspyops.fold import fold
from dspyops.logstart import BrokenChain
from dspyops.proto import events_pb2 as pb
from dspyops.state import EMPTY, State, VersionState
from gateway_svc.bulk_gc import BulkCollection
from gateway_svc.corpora import GatewayCorpora
from gateway_svc.loader import serving_versions
from gateway_svc.readiness import Readiness
from gateway_svc.source import LogSource

_log = structlog.get_logger()
# the events whose bytes the replica keeps beside the state (artifacts, corpus documents)
_CARRIERS = frozenset({pb.VersionRegistered.DESCRIPTOR.full_name, pb.CorpusRegistered.DESCRIPTOR.full_name})
_FOLD_IN_THREAD = 2_000  # events: ~5-10 ms of fold, more than a request should wait behind
_TAIL_RETRY = 1.0  # seconds before tailing again after the source or a fold failed


class Replica:
    def __init__(
        self,
        source: LogSource,
        initial: State = EMPTY,
        readiness: Readiness | None = None,
        corpora: GatewayCorpora | None = None,
        log: EventStore | None = None,
    ) -> None:
        """`initial`: a snapshot's state to start from (only with `log`, where its serving
        versions' artifacts are read at `start`); `readiness`: told how the tail goes (serving
        once caught up, and while it can follow); `corpora`: the corpus documents by digest (a
        snapshot's, then each new one the tail passes); `log`: where the artifact of a version
        that does not serve is read when it is loaded (None: the bytes the tail passes are kept,
        for good)."""
        self.source = source
        self.log = log
        self.readiness = readiness or Readiness("the log")
        self.readiness.position = initial.position
        self.state: State = initial
        self.artifacts: dict[str, bytes] = {}  # by digest
        self.corpora = corpora or GatewayCorpora()
        self.folded = 0  # events folded by this replica (not counting the snapshot)
        # why the tail last failed (a broken chain, a replaced log file, a lost optimizer) until
        # it folds again; the state stays as it was meanwhile
        self.failure: BaseException | None = None
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        # told of each new state, on the loop, after its fold (e.g. unloading idle programs)
        self.listeners: list[Callable[[State], None]] = []

    async def start(self, head: int | None = None) -> None:
        """Start tailing; when `head` is given, return once the replica has reached it
        (raising what stopped the tail, if it stopped before)."""
        if self.log is not None and self.state.programs:  # a snapshot's: the serving versions' bytes
            await asyncio.to_thread(self._keep_serving, {})
        self._task = asyncio.create_task(self._tail(), name="log-tail")
        if head is not None:
            await self.wait_for(head)
            if self.failure is not None and self.state.position < head:
                raise self.failure
            # A replica restored from a snapshot at the head reaches it before its source has
            # connected; it serves only once the source has said where the head is.
            async with self._advanced:
                await self._advanced.wait_for(lambda: self.readiness.ready or self.failure is not None)

    async def wait_for(self, position: int, timeout: float | None = None) -> bool:
        async def reached() -> None:
            async with self._advanced:
                await self._advanced.wait_for(
                    lambda: self.state.position >= position or self.failure is not None
                )

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            return False
        return self.state.position >= position

    async def _tail(self) -> None:
        """Follow the source for good: a failure of the source or of a fold is reported to
        the readiness (not serving, with the reason) and the tail starts again from the
        position it has reached, instead of dying while health still says SERVING."""
        last = ""
        while True:
            try:
                await self._follow()
                return  # the source ended: it was closed
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:300]}"
                if reason != last:  # the traceback once, not once per retry
                    if isinstance(exc, BrokenChain):  # the log's fault, not the code's: no traceback
                        _log.error("log_tail_failed", position=self.state.position, error=str(exc))
                    else:
                        _log.exception("log_tail_failed", position=self.state.position)
                    last = reason
                self.failure = exc
                async with self._advanced:  # a start() waiting for the head learns why it cannot
                    self._advanced.notify_all()
                await self.readiness.failed(reason, unreachable=isinstance(exc, StoreUnavailable))
                await asyncio.sleep(_TAIL_RETRY)

    async def _follow(self) -> None:
        bulk = BulkCollection()
        try:
            async for page in self.source.pages(self.state.position, self):
                # a full catch-up page says the tail is behind the head (a replay)
                if len(page) >= _FOLD_IN_THREAD:
                    bulk.enter()
                else:
                    bulk.leave()
                await self._apply(page)
        finally:
            bulk.leave()

    def artifact(self, version: VersionState) -> bytes:
        """The version's artifact bytes: kept ones (the loader checks them against the digest),
        else read from the log and checked there (ArtifactNotFound, ArtifactCorrupt)."""
        found = self.artifacts.get(version.artifact_digest)
        if found is not None:
            return found
        if self.log is None:  # the tail keeps every artifact it passes: this one never came
            raise ArtifactNotFound(f"no artifact with digest {version.artifact_digest} came from the source")
        return version_artifact_bytes(self.log, version)

    def _keep_serving(self, passed: dict[str, bytes]) -> None:
        """Keep the bytes of the versions that serve now, and only those: from `passed` (the
        page's registrations) or else read from the log (a version registered before and routed
        now). One the log cannot give now is left to be read when it is loaded."""
        assert self.log is not None
        kept: dict[str, bytes] = {}
        for digest, version in serving_versions(self.state).items():
            found = self.artifacts.get(digest) or passed.get(digest)
            if found is None:
                try:
                    found = version_artifact_bytes(self.log, version)
                except (StoreUnavailable, ArtifactNotFound, ArtifactCorrupt) as exc:
                    _log.warning("artifact_not_kept", version=version.version, error=str(exc)[:200])
                    continue
            kept[digest] = found
        self.artifacts = kept

    async def _apply(self, page: list[StoredEvent]) -> None:
        keep_all = self.log is None
        passed: dict[str, bytes] = {}
        for event in page:
            if event.type not in _CARRIERS:  # most events: one set test (replay: ~1 us less each)
                continue
            if (found := registered_artifact(event)) is not None:  # unchecked here: the loader checks it
                (self.artifacts if keep_all else passed)[found[0]] = found[1]
            self.corpora.note(event)
        before = self.state
        # one fold and one wake-up per page; a big page (catch-up, a burst) is folded in
        # a worker thread so requests keep being served meanwhile
        if len(page) >= _FOLD_IN_THREAD:
            self.state = await asyncio.to_thread(fold, page, self.state)
        else:
            self.state = fold(page, self.state)
        self.folded += len(page)
        # what serves changes only with a deployment or a new version
        if not keep_all and (passed or self.state.deployments is not before.deployments):
            if len(page) >= _FOLD_IN_THREAD:
                await asyncio.to_thread(self._keep_serving, passed)
            else:
                self._keep_serving(passed)
        self.failure = None  # following again
        for listener in self.listeners:
            try:
                listener(self.state)
            except Exception as exc:  # a listener's failure is its own, never the tail's
                structlog.get_logger().error("state_listener_failed", error=str(exc)[:300])
        async with self._advanced:
            self._advanced.notify_all()
        await self.readiness.advanced(self.state.position)

    # the tail's observer: the readiness hears it, and a start() waiting for it wakes
    async def connected(self, head: int) -> None:
        await self.readiness.connected(head)
        async with self._advanced:
            self._advanced.notify_all()

    async def failed(self, reason: str) -> None:
        await self.readiness.failed(reason)
        async with self._advanced:
            self._advanced.notify_all()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.source.close()
