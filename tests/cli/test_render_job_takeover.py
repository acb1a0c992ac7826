"""A job's stream as `dspyops jobs watch` prints it, with the takeover kinds: who claimed
the job, a retry and why, a cancel asked for on any replica (reasons are user text: never
read as rich markup)."""

from __future__ import annotations

import pytest

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.jobs import render_job_events


def test_claims_retries_and_cancel_requests_get_a_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        opb.OptimizationEvent(stream_version=1, accepted=pb.JobAccepted(job_id="j1", max_attempts=2)),
        opb.OptimizationEvent(stream_version=2, claimed=pb.JobClaimed(owner="host-a/41/0a0b0c0d", attempt=1)),
        opb.OptimizationEvent(
            stream_version=5,
            retried=pb.JobRetried(attempt=2, lost_owner="host-a/41/0a0b0c0d", reason="lease [/] expired"),
        ),
        opb.OptimizationEvent(stream_version=6, claimed=pb.JobClaimed(owner="host-b/7/01020304", attempt=2)),
        opb.OptimizationEvent(stream_version=7, cancel_requested=pb.JobCancelRequested(reason="[red]enough")),
        opb.OptimizationEvent(stream_version=8, cancelled=pb.JobCancelled(reason="enough")),
    ]
    last = render_job_events(events, as_json=False)
    out = capsys.readouterr().out
    assert last is events[-1]
    assert "claimed by host-a/41/0a0b0c0d (attempt 1)" in out
    assert "retry, attempt 2: lease [/] expired" in out
    assert "claimed by host-b/7/01020304 (attempt 2)" in out
    assert "cancel requested: [red]enough" in out
