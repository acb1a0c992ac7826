"""WatchJob across optimizer replicas: when the server streaming a job goes away, go on at
another replica of the same log from the last position seen.

A job's ``OptimizationEvent.stream_version`` is the log's (the same on every replica;
``sequence`` is the serving replica's own numbering), so the resumed request carries
``after_stream_version`` = the last one seen and ``after_sequence`` = 0: nothing logged is
repeated or lost. Progress ticks are never logged; those another replica would have sent
are simply not there (a replica that does not run the job has none).

gRPC's own retry policy cannot do this: it resends a call only before any response has
arrived, and only to the same address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import grpc

from dspyops.proto import optimizer_pb2 as opb

if TYPE_CHECKING:
    from dspyops.client.optimizer import OptimizerClient

BACKOFF_SECONDS = 0.2  # between two failed targets in a row, times the failures so far


def watch(
    client: OptimizerClient, request: opb.WatchJobRequest, targets: Sequence[str], timeout: float | None
) -> Iterator[opb.OptimizationEvent]:
    """The job's events through `client`, then through each of `targets` in turn whenever
    the one streaming answers UNAVAILABLE. Raises the last UNAVAILABLE once every address
    failed in a row with no event in between; any other error at once."""
    addresses = list(dict.fromkeys([client.address, *targets]))
    index, failures = 0, 0
    after_version = request.after_stream_version
    current = request
    while True:
        address = addresses[index]
        other = None
        if address != client.address:  # a client of that replica, with the same credentials
            other = type(client)(address, client.timeout, **client._credentials)
        try:
            stub = client.stub if other is None else other.stub
            for event in stub.WatchJob(current, timeout=timeout):
                failures = 0
                after_version = max(after_version, event.stream_version)
                yield event
            return
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            failures += 1
            if failures >= len(addresses):
                raise
        finally:
            if other is not None:
                other.close()
        index = (index + 1) % len(addresses)
        # another replica numbers its events itself: resume by the log's position only
        current = opb.WatchJobRequest(job_id=request.job_id, after_stream_version=after_version)
        time.sleep(BACKOFF_SECONDS * failures)
