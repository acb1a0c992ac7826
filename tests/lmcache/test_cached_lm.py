"""The job's LM (dspyops.lmcache.lm.CachedLM) on the offline engine and on a real HTTP
provider (the loopback fake): a call is paid once per job, replayed after, stored as JSON,
and DSPy's own response cache never answers in its place."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dspy
import pytest

from dspyops.lmcache.cache import LMCache
from dspyops.lmcache.lm import CachedLM
from dspyops.lmcache.memory import MemoryLMCache
from dspyops.lmcache.sqlite import SQLiteLMCache
from dspyops.offline.engine import OFFLINE_MODEL, AsyncOfflineEngine, OfflineEngine
from tests.support.fake_provider import FakeProvider


@dataclass
class Counts:
    replayed: int = 0
    paid: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def replay(self) -> None:
        with self.lock:
            self.replayed += 1

    def pay(self) -> None:
        with self.lock:
            self.paid += 1


class CountingEngine(OfflineEngine):
    """The offline engine, counting the requests that reach it (what a provider would bill)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def complete(self, request: Any) -> Any:
        self.calls += 1
        return super().complete(request)


def offline_lm(
    cache: LMCache, counts: Counts, engine: OfflineEngine, job_id: str = "job-1", **kw: Any
) -> CachedLM:
    return CachedLM(
        OFFLINE_MODEL,
        engine=engine,
        async_engine=AsyncOfflineEngine(engine),
        lm_cache=cache,
        job_id=job_id,
        connection=kw.pop("connection", "offline"),
        on_replay=counts.replay,
        before_paid=counts.pay,
        temperature=kw.pop("temperature", 0.0),
        max_tokens=256,
        **kw,
    )


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


def test_a_call_is_paid_once_then_replayed_with_no_usage() -> None:
    cache, counts, engine = MemoryLMCache(), Counts(), CountingEngine()
    lm = offline_lm(cache, counts, engine)
    predict = dspy.Predict("question -> answer")
    tracker = dspy.utils.usage_tracker.UsageTracker()
    with dspy.context(lm=lm, usage_tracker=tracker):
        first = predict(question="what is the capital of France?")
        paid_tokens = dict(tracker.get_total_tokens())
        again = predict(question="what is the capital of France?")
    assert (engine.calls, counts.paid, counts.replayed) == (1, 1, 1)
    assert first.answer == again.answer
    assert tracker.get_total_tokens() == paid_tokens  # the replay added no tokens
    assert cache.count("job-1") == 1


def test_the_key_is_the_whole_request_the_job_and_the_connection() -> None:
    cache, counts, engine = MemoryLMCache(), Counts(), CountingEngine()
    lm = offline_lm(cache, counts, engine)
    lm("hello")
    lm("hello")
    assert (engine.calls, counts.replayed) == (1, 1)
    lm("hello again")  # another prompt
    lm("hello", temperature=0.7)  # another kwarg
    lm.copy(rollout_id=3, temperature=1.0)("hello")  # DSPy's way to ask for a fresh sample
    offline_lm(cache, counts, engine, job_id="job-2")("hello")  # another job
    offline_lm(cache, counts, engine, connection="other")("hello")  # another connection, same model
    assert engine.calls == 6 and counts.replayed == 1
    assert cache.count("job-1") == 5 and cache.count("job-2") == 1


def test_rows_are_model_response_json_never_pickle(tmp_path: Any) -> None:
    cache, counts, engine = SQLiteLMCache(tmp_path / "events.db"), Counts(), CountingEngine()
    try:
        lm = offline_lm(cache, counts, engine)
        [text] = lm("tell me something")
        key = lm.request_key("tell me something")
        stored = cache.get("job-1", key)
        assert stored is not None
        body = json.loads(stored)
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == text
        assert lm("tell me something") == [text] and counts.replayed == 1
    finally:
        cache.close()


def test_async_calls_share_the_rows_of_sync_calls() -> None:
    cache, counts, engine = MemoryLMCache(), Counts(), CountingEngine()
    lm = offline_lm(cache, counts, engine)
    [sync] = lm("hello")

    async def twice() -> tuple[list[str], list[str]]:
        return await lm.acall("hello"), await lm.acall("something else")

    replayed, fresh = asyncio.run(twice())
    assert replayed == [sync] and counts.replayed == 1
    assert fresh and counts.paid == 2 and cache.count("job-1") == 2


def test_before_paid_may_stop_the_call_before_it_is_made() -> None:
    cache, counts, engine = MemoryLMCache(), Counts(), CountingEngine()
    lm = offline_lm(cache, counts, engine)
    lm("hello")

    class Stop(BaseException):
        pass

    def refuse() -> None:
        raise Stop

    lm.before_paid = refuse
    assert lm("hello")  # a replay is never refused: it costs nothing
    with pytest.raises(Stop):
        lm("a new question")
    assert engine.calls == 1 and cache.count("job-1") == 1


def test_dspy_own_cache_never_answers_first(provider: FakeProvider) -> None:
    """A plain dspy.LM with DSPy's cache on fills DSPy's cache for a request; the job's LM
    for the same request still pays (once) and replays from the job's cache only."""
    plain = dspy.LM("openai/m", api_base=provider.api_base, api_key="k", cache=True, temperature=0.0)
    plain("hello provider")
    plain("hello provider")
    assert len(provider.received) == 1  # DSPy's cache is live and answered the second call

    cache, counts = MemoryLMCache(), Counts()
    lm = CachedLM(
        "openai/m",
        api_base=provider.api_base,
        api_key="k",
        temperature=0.0,
        cache=True,  # asked for: refused, the job's cache is the only one
        lm_cache=cache,
        job_id="job-1",
        connection="fake",
        on_replay=counts.replay,
        before_paid=counts.pay,
    )
    assert lm.cache is False
    [paid] = lm("hello provider", cache=True)
    assert len(provider.received) == 2 and (counts.paid, counts.replayed) == (1, 0)
    assert lm("hello provider") == [paid]
    assert len(provider.received) == 2 and counts.replayed == 1
    stored = cache.get("job-1", lm.request_key("hello provider"))
    assert stored is not None and json.loads(stored)["usage"]["prompt_tokens"] == provider.usage[0]
    assert b'"k"' not in stored and b"api_key" not in stored  # the key never reaches a row


def test_a_real_provider_replay_reports_no_usage(provider: FakeProvider) -> None:
    cache, counts = MemoryLMCache(), Counts()
    lm = CachedLM(
        "openai/m",
        api_base=provider.api_base,
        api_key="k",
        lm_cache=cache,
        job_id="j",
        connection="fake",
        on_replay=counts.replay,
        before_paid=counts.pay,
    )
    tracker = dspy.utils.usage_tracker.UsageTracker()
    predict = dspy.Predict("question -> answer")
    with dspy.context(lm=lm, usage_tracker=tracker):
        first = predict(question="which team?")
        after_paid = tracker.get_total_tokens()["openai/m"]["prompt_tokens"]
        again = predict(question="which team?")
    assert first.answer == again.answer == provider.answer
    assert after_paid == provider.usage[0]
    assert tracker.get_total_tokens()["openai/m"]["prompt_tokens"] == after_paid
    assert len(provider.received) == 1 and counts.replayed == 1
