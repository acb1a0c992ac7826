"""A retried job replays the LM calls its first run paid for (dspyops.lmcache).

A retry is a second run of the same job id with the first run's cache rows still there
(the takeover after a crash does exactly that; here the runner or the executor is simply
called twice with one job id, as the terminal event that deletes the rows never came). A
seeded optimizer asks the same questions again, so the second run pays for nothing: every
call is replayed, and it reaches the same program and scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest

from dspyops.client import OptimizerClient
from dspyops.datasets import load_dataset, split
from dspyops.eventlog import open_store
from dspyops.ledger import Ledger
from dspyops.lm import LMConfig
from dspyops.lmcache import open_lm_cache
from dspyops.lmcache.cache import LMCache
from dspyops.lmcache.sqlite import SQLiteLMCache
from dspyops.names import job_stream
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.cancel import CancelToken, JobCancelled
from optimizer_svc.jobs.budgets import Budget
from optimizer_svc.jobs.executor import JobExecutor, ThreadExecutor
from optimizer_svc.jobs.runner import JobResult, JobSpec, run_job
from optimizer_svc.progress.usage import SharedUsageTracker
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows
from tests.support.ray_cluster import EXECUTORS

# Every shipped optimizer but BootstrapFewShotWithOptuna, whose Optuna study is not seeded
# by DSPy (its second run asks other questions: it replays part of the first, pays the rest).
DETERMINISTIC: dict[str, dict[str, Any]] = {
    "LabeledFewShot": {},
    "BootstrapFewShot": {},
    "BootstrapFewShotWithRandomSearch": {"num_candidate_programs": 2, "max_labeled_demos": 2},
    "MIPROv2": {"auto": "light", "max_labeled_demos": 2},
    "COPRO": {"breadth": 2, "depth": 1},
    "GEPA": {"max_metric_calls": 30},
    "SIMBA": {},
    "KNNFewShot": {},
    "InferRules": {},
    "Ensemble": {},
    "BetterTogether": {},
}


@pytest.fixture(scope="module")
def data() -> tuple[list[dspy.Example], list[dspy.Example]]:
    train, val = split(load_dataset("support_tickets"), val_fraction=0.3, seed=0)
    return train[:12], val[:8]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[LMCache]:
    opened = open_lm_cache(str(tmp_path / "events.db"))
    yield opened
    opened.close()


def job(
    optimizer: str,
    params: dict[str, Any],
    data: tuple[list[dspy.Example], list[dspy.Example]],
    cache: LMCache,
    **more: Any,
) -> JobSpec:
    train, val = data
    return JobSpec(
        job_id="job-retried",
        spec=ProgramSpec(module="Predict", signature="text -> label"),
        lm=LMConfig(),
        optimizer=optimizer,
        params=params,
        metric="exact_match",
        trainset=train,
        valset=val,
        lm_cache=cache,
        **more,
    )


def calls(result: JobResult) -> int:
    return result.usage.lm_calls + result.usage.replayed_lm_calls


@pytest.mark.parametrize("optimizer", sorted(DETERMINISTIC))
def test_a_second_run_of_the_job_replays_every_call(
    optimizer: str, data: tuple[list, list], cache: LMCache
) -> None:
    spec = job(optimizer, DETERMINISTIC[optimizer], data, cache)
    first = run_job(spec, lambda e: None, CancelToken())
    assert first.usage.lm_calls > 0 and cache.count(spec.job_id) > 0
    second = run_job(spec, lambda e: None, CancelToken())
    assert second.usage.lm_calls == 0, f"{optimizer} paid again: it asked other questions"
    assert second.usage.replayed_lm_calls == calls(first)
    assert (second.usage.input_tokens, second.usage.output_tokens) == (0, 0)
    assert (second.baseline_score, second.final_score) == (first.baseline_score, first.final_score)
    assert second.state == first.state


def test_another_job_id_pays_for_its_own_calls(data: tuple[list, list], cache: LMCache) -> None:
    first = run_job(job("BootstrapFewShot", {}, data, cache), lambda e: None, CancelToken())
    other = job("BootstrapFewShot", {}, data, cache)
    other.job_id = "another-job"
    second = run_job(other, lambda e: None, CancelToken())
    assert second.usage.lm_calls == first.usage.lm_calls > 0


def test_replayed_calls_do_not_count_against_max_lm_calls(data: tuple[list, list], cache: LMCache) -> None:
    spec = job("BootstrapFewShot", {}, data, cache)
    paid = run_job(spec, lambda e: None, CancelToken()).usage.lm_calls
    assert paid > 3
    spec.budget = Budget(max_lm_calls=1)
    replayed = run_job(spec, lambda e: None, CancelToken())  # all replays: within any budget
    assert (replayed.usage.lm_calls, replayed.usage.replayed_lm_calls) == (0, paid)

    fresh = job("BootstrapFewShot", {}, data, cache, budget=Budget(max_lm_calls=3))
    fresh.job_id = "a-new-job"
    usage = SharedUsageTracker()
    with pytest.raises(JobCancelled, match="max_lm_calls=3"):
        run_job(fresh, lambda e: None, CancelToken(), usage)
    assert 0 < usage.snapshot().lm_calls <= 3  # the call the budget refused was never made


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_a_retry_on_either_executor_replays_from_the_log_cache(
    executor: str, data: tuple[list, list], tmp_path: Path
) -> None:
    """On Ray the task opens the cache itself (here: the SQLite file beside the log, which
    a cluster on one machine reaches), from the log named in the hand-over."""
    runner = make_executor(executor, tmp_path)
    cache = SQLiteLMCache(tmp_path / "events.db")
    try:
        spec = job(
            "BootstrapFewShotWithRandomSearch", DETERMINISTIC["BootstrapFewShotWithRandomSearch"], data, cache
        )
        first = runner.run(spec, lambda e: None, CancelToken(), SharedUsageTracker())
        usage = SharedUsageTracker()
        second = runner.run(spec, lambda e: None, CancelToken(), usage)
        assert first.usage.lm_calls > 0 and second.usage.lm_calls == 0
        assert second.usage.replayed_lm_calls == calls(first)
        assert usage.snapshot().replayed_lm_calls == calls(first)  # mirrored from the task
        assert second.final_score == first.final_score
    finally:
        cache.close()
        runner.close()


def test_a_ray_task_replays_from_the_postgresql_log_cache(
    ray_cluster: str, data: tuple[list, list], tmp_path: Path, postgres_url: str
) -> None:
    runner = make_executor("ray", tmp_path)
    cache = open_lm_cache(postgres_url)
    try:
        spec = job("BootstrapFewShot", {}, data, cache)
        first = runner.run(spec, lambda e: None, CancelToken(), SharedUsageTracker())
        assert cache.count(spec.job_id) > 0  # written by the task, through its own pool
        second = runner.run(spec, lambda e: None, CancelToken(), SharedUsageTracker())
        assert (second.usage.lm_calls, second.usage.replayed_lm_calls) == (0, calls(first))
    finally:
        cache.close()
        runner.close()


def make_executor(name: str, tmp_path: Path) -> JobExecutor:
    if name == "thread":
        return ThreadExecutor()
    from optimizer_svc.jobs.ray_executor import RayExecutor

    return RayExecutor("local", artifacts_dir=tmp_path / "artifacts")


def test_the_rows_of_a_job_go_when_its_terminal_event_is_appended(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    config = OptimizerConfig(log=str(log), data_dir=tmp_path / "data")
    thread = ServerThread(lambda: start(config))
    rows = ticket_rows()
    try:
        with OptimizerClient(thread.address) as opt:
            events = list(
                opt.start_optimization(
                    "tickets",
                    "text -> label",
                    optimizer="BootstrapFewShot",
                    trainset=rows[:12],
                    valset=rows[12:20],
                )
            )
        done = events[-1].completed
        assert events[-1].WhichOneof("kind") == "completed" and done.usage.lm_calls > 0
        job_id = events[0].job_id
        cache = open_lm_cache(str(log))
        try:
            assert cache.count(job_id) == 0  # deleted with JobCompleted
            assert (tmp_path / "log.db.lmcache.sqlite").exists()
        finally:
            cache.close()
    finally:
        thread.stop()


def test_an_orphan_interrupted_at_start_loses_its_rows(tmp_path: Path) -> None:
    """A job the log says is running when the optimizer starts (its process died) ends
    Interrupted at start: its rows go too, the other job's stay."""
    log = tmp_path / "log.db"
    store = open_store(str(log))
    Ledger(store).append(job_stream("orphan1"), [pb.JobAccepted(job_id="orphan1", program="p")], None)
    store.close()
    cache = open_lm_cache(str(log))
    cache.put("orphan1", "k", b"{}")
    cache.put("someone-else", "k", b"{}")
    thread = ServerThread(lambda: start(OptimizerConfig(log=str(log), data_dir=tmp_path / "data")))
    try:
        with OptimizerClient(thread.address) as opt:
            assert opt.get_job("orphan1").state == opb.INTERRUPTED
        assert cache.count("orphan1") == 0 and cache.count("someone-else") == 1
    finally:
        thread.stop()
        cache.close()
