"""A job's summary is kept once, in the fold: GetJob and ListJobs answer the same while the
process that ran the job lives as after a restart (real servers, one SQLite log). Only
`last_sequence` differs: the live process also streamed the progress ticks, never logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from dspyops.client import OptimizerClient, examples
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]


def request(optimizer: str, params: dict[str, Any], **kw: Any) -> opb.StartOptimizationRequest:
    struct = Struct()
    struct.update(params)
    return opb.StartOptimizationRequest(
        program="tickets",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        optimizer=optimizer,
        params=struct,
        trainset=examples(TRAIN),
        valset=examples(VAL),
        **kw,
    )


def without_sequence(jobs: list[opb.Job]) -> list[opb.Job]:
    copies = []
    for job in jobs:
        copy = opb.Job()
        copy.CopyFrom(job)
        copy.ClearField("last_sequence")
        copies.append(copy)
    return copies


def test_get_job_and_list_jobs_answer_the_same_before_and_after_a_restart(tmp_path: Path) -> None:
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data")
    thread = ServerThread(lambda: start(config))
    try:
        with OptimizerClient(thread.address) as opt:
            ran = [
                list(opt.stub.StartOptimization(request("LabeledFewShot", {"k": 4}))),
                # minibatch trials first, then the finalists on the whole trainset
                list(
                    opt.stub.StartOptimization(
                        request("SIMBA", {"bsize": 4, "num_candidates": 2, "max_steps": 2})
                    )
                ),
                # a gate that fails: registered as DEVELOPMENT, the job still succeeds
                list(opt.stub.StartOptimization(request("LabeledFewShot", {"k": 1}, min_score=0.99))),
                # cancelled by its budget
                list(
                    opt.stub.StartOptimization(
                        request("BootstrapFewShot", {}, budget=pb.Budget(max_lm_calls=3))
                    )
                ),
            ]
            assert [events[-1].WhichOneof("kind") for events in ran] == [
                "completed",
                "completed",
                "completed",
                "cancelled",
            ]
            ids = [events[0].job_id for events in ran]
            live = [opt.get_job(job_id) for job_id in ids]
            listed = list(opt.list_jobs().jobs)
    finally:
        thread.stop()
    for job, events in zip(live, ran, strict=True):
        assert job.last_sequence == len(events)
        trials = [e.trial for e in events if e.WhichOneof("kind") == "trial"]
        assert job.trials == len(trials)
        assert job.best_score == (trials[-1].best_score if trials else 0.0)
    assert live[0].state == opb.SUCCEEDED and live[0].version == ran[0][-1].completed.version
    assert live[3].state == opb.CANCELLED and "max_lm_calls" in live[3].error

    thread = ServerThread(lambda: start(config))
    try:
        with OptimizerClient(thread.address) as opt:
            after = [opt.get_job(job_id) for job_id in ids]
            assert [j.last_sequence for j in after] == [
                len([e for e in events if e.WhichOneof("kind") != "progress"]) for events in ran
            ]
            assert list(opt.list_jobs().jobs) == after
            assert without_sequence(after) == without_sequence(live) == without_sequence(listed)
            with pytest.raises(grpc.RpcError) as err:
                opt.cancel_job(ids[3])
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details() == f"job_id: job {ids[3]} has ended already (cancelled)"
    finally:
        thread.stop()
