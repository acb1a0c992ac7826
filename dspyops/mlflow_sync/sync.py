"""A sync: read the log through the optimizer's client (ReadLog pages, then SubscribeLog
with --follow), fold it into the Mirror and write what each part touched. Every sync reads
from position 0: the experiment's cursor tag says how far MLflow is mirrored, but what is
written is decided by comparing with MLflow, so a lost or stale cursor costs only time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grpc

from dspyops.client import OptimizerClient
from dspyops.mlflow_sync.mirror import TYPES, Mirror
from dspyops.mlflow_sync.writer import MlflowWriter, Written
from dspyops.proto import events_pb2 as pb


def read_all(opt: OptimizerClient, mirror: Mirror) -> set[tuple[str, str]]:
    """Every mirrored event of the log, in pages; what they touched."""
    touched: set[tuple[str, str]] = set()
    after = 0
    while True:
        page = opt.read_log(after, 10_000, types=TYPES)
        _apply(mirror, page.events, touched)
        if page.scanned_to <= after or page.scanned_to >= page.head:
            mirror.position = max(mirror.position, page.head)
            return touched
        after = page.scanned_to


def _apply(mirror: Mirror, events: Iterable[pb.Event], touched: set[tuple[str, str]]) -> None:
    for event in events:
        hit = mirror.apply(event)
        if hit is not None:
            touched.add(hit)


def state_reader(opt: OptimizerClient) -> Callable[[str, str], bytes | None]:
    """A version's DSPy JSON state (ExportVersion), None when the registry has no such version."""

    def state_json(program: str, version: str) -> bytes | None:
        try:
            return opt.export_version(program, version).state_json
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    return state_json


def sync_once(opt: OptimizerClient, writer: MlflowWriter) -> tuple[Mirror, Written]:
    mirror = Mirror()
    touched = read_all(opt, mirror)
    return mirror, writer.write(mirror, touched, state_reader(opt))


def follow(
    opt: OptimizerClient, writer: MlflowWriter, mirror: Mirror, report: Callable[[Written], None]
) -> None:
    """Mirror each event as it arrives after what `mirror` holds; ends when the caller stops
    it (KeyboardInterrupt, or the stream's end)."""
    state_json = state_reader(opt)
    for event in opt.subscribe_log(mirror.position, types=TYPES):
        touched: set[tuple[str, str]] = set()
        _apply(mirror, [event], touched)
        if touched:
            report(writer.write(mirror, touched, state_json))
