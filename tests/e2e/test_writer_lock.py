"""One optimizer per log: a second one on the same file refuses to start, exits non-zero,
names the log and the holder's pid, and appends nothing (it used to take the first one's
running jobs for orphans and write JobInterrupted for them: a false audit trail)."""

from __future__ import annotations

import os
from pathlib import Path

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.launch import ServiceProcess
from dspyops.proto import events_pb2 as pb
from tests.support.harness import serve_until_exit
from tests.support.logs import write_log


def test_a_second_optimizer_on_the_same_log_refuses_to_start(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    write_log(log)
    args = ["optimizer", "--log", str(log), "--data-dir", str(tmp_path / "data")]
    first = ServiceProcess("optimizer-1", args, tmp_path, dict(os.environ))
    try:
        # a job the first optimizer is running, as far as the log can tell
        store = open_store(str(log))
        store.append("job-deadbeef", [new_event(pb.JobAccepted(job_id="deadbeef", program="tickets"))], 0)
        head = store.head()

        status, stderr = serve_until_exit(args, tmp_path)
        assert status is not None, "a second optimizer started on a log that another one holds"
        assert status != 0
        assert str(log) in stderr and f"process {first.pid}" in stderr
        assert "Traceback" not in stderr
        assert store.head() == head  # no JobInterrupted for the first one's live job
        assert all(e.type != "dspyops.v1.JobInterrupted" for e in store.read())
        store.close()

        with OptimizerClient(first.address) as opt:  # the holder is unaffected
            assert opt.get_job("deadbeef").state != 6  # not INTERRUPTED
        # gateways take no lease: any number of them share the optimizer's log
        gateway_args = ["gateway", "--log", str(log), "--canary-interval", "0"]
        gateway = ServiceProcess("gateway", gateway_args, tmp_path, dict(os.environ))
        try:
            with GatewayClient(gateway.address) as gw:
                assert gw.get_deployment_state("web").routes[0].version == "1.0.0"
        finally:
            gateway.stop()
    finally:
        assert first.stop() == 0

    # The lease ends with its holder (also on kill -9: the kernel drops the flock).
    again = ServiceProcess("optimizer-2", args, tmp_path, dict(os.environ))
    try:
        with OptimizerClient(again.address) as opt:
            assert opt.get_job("deadbeef").state == 6  # now it is an orphan, and recorded as one
    finally:
        again.process.kill()
        again.process.wait(30)
        again.stderr.close()
    after_kill = ServiceProcess("optimizer-3", args, tmp_path, dict(os.environ))
    after_kill.stop()
    assert (tmp_path / "log.db.lock").read_text() == ""  # released: no stale pid left behind
