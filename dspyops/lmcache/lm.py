"""The job's LM: a ``dspy.LM`` whose calls go through the job's LM cache.

``CachedLM`` overrides ``forward``/``aforward`` (DSPy 3.4's subclass interface; an LM that
overrides them is called through DSPy's legacy engine, which never consults DSPy's own
response cache, and the call through to the provider is made with ``cache=False``, so
neither DSPy's in-process nor its disk cache can answer before this one: a replay counted
here is a call nobody paid for again).

* The key is DSPy's own request key (``dspy.cache.cache_key`` of the request DSPy would
  cache: model, messages and every request kwarg, ``rollout_id`` and temperature included)
  joined with the connection's name: DSPy's key ignores ``api_base``, so two connections
  serving one model string would otherwise answer for each other.
* A hit returns the stored response with its usage zeroed and calls ``on_replay``.
* A miss calls ``before_paid`` (the job's LM-call budget: it may raise to stop the job
  before the call is bought), calls through, and stores the response.
* ``on_call`` follows every call made or replayed (not one ``before_paid`` refused), so a
  job counts its calls without a DSPy callback (each one slows every call down).
* The cache only saves money: when it cannot be reached (StoreUnavailable), the call is
  paid for and not kept, and the job goes on as it would without a cache.
* Responses are stored as JSON (``litellm.ModelResponse.model_dump_json``), never pickled:
  the rows are readable by anyone who can read the log's database, and loading them runs
  no code.

DSPy 3.5 drops the forward/aforward interface: the cache then moves into a custom engine
(``complete(Request) -> Response``) around the provider's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import dspy
import structlog
from dspy.clients.execution import IGNORED_CACHE_KEYS, prepare

from dspyops.eventlog.store import StoreUnavailable
from dspyops.lmcache.cache import LMCache
from dspyops.scrub import scrub

_log = structlog.get_logger()


def _nothing() -> None:
    return None


class CachedLM(dspy.LM):  # type: ignore[misc]  # dspy is untyped
    """``dspy.LM(model, **kwargs)`` whose calls are cached per job in ``lm_cache``.

    ``connection``: the name of the LM connection (part of every key). ``on_replay`` is
    called for each call answered from the cache, ``before_paid`` before each call that is
    paid for, ``on_call`` after each call made or replayed; all on the calling thread.
    ``copy()`` (DSPy's, shallow) shares all of them."""

    def __init__(
        self,
        model: str,
        *,
        lm_cache: LMCache,
        job_id: str,
        connection: str,
        on_replay: Callable[[], None] = _nothing,
        before_paid: Callable[[], None] = _nothing,
        on_call: Callable[[], None] = _nothing,
        **kwargs: Any,
    ) -> None:
        kwargs["cache"] = False  # DSPy's own cache never answers for this one
        super().__init__(model, **kwargs)
        self.lm_cache = lm_cache
        self.job_id = job_id
        self.connection = connection
        self.on_replay = on_replay
        self.before_paid = before_paid
        self.on_call = on_call

    def request_key(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> str:
        """The cache key of a call: DSPy's key of the request, and the connection's name.
        The sync form of DSPy's key for async calls too: a retry that asks the same request
        the other way still replays it."""
        kwargs.pop("cache", None)
        call = prepare(self, prompt, messages, kwargs, direct=True)
        dspy_key = dspy.cache.cache_key(call.key(self, False), IGNORED_CACHE_KEYS)
        return hashlib.sha256(f"{self.connection}\n{dspy_key}".encode()).hexdigest()

    def _replayed(self, key: str) -> Any | None:
        try:
            stored = self.lm_cache.get(self.job_id, key)
        except StoreUnavailable as exc:  # the cache only saves money: the call is made instead
            _log.warning("lm_cache_unavailable", job_id=self.job_id, error=scrub(str(exc)))
            return None
        if stored is None:
            return None
        import litellm  # here, not at import: it takes seconds, and services start without it

        response = litellm.ModelResponse.model_validate_json(stored)
        response.usage = litellm.Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
        self.on_replay()
        return response

    def _keep(self, key: str, response: Any) -> None:
        try:
            self.lm_cache.put(self.job_id, key, as_json(response))
        except StoreUnavailable as exc:  # a retry pays for this call again, nothing worse
            _log.warning("lm_cache_unavailable", job_id=self.job_id, error=scrub(str(exc)))

    def forward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        key = self.request_key(prompt, messages, **kwargs)
        replayed = self._replayed(key)
        if replayed is not None:
            self.on_call()
            return replayed
        self.before_paid()
        kwargs["cache"] = False
        try:
            response = super().forward(prompt, messages, **kwargs)
        finally:
            self.on_call()
        self._keep(key, response)
        return response

    async def aforward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        key = await asyncio.to_thread(self.request_key, prompt, messages, **kwargs)
        replayed = await asyncio.to_thread(self._replayed, key)
        if replayed is not None:
            self.on_call()
            return replayed
        self.before_paid()
        kwargs["cache"] = False
        try:
            response = await super().aforward(prompt, messages, **kwargs)
        finally:
            self.on_call()
        await asyncio.to_thread(self._keep, key, response)
        return response


def as_json(response: Any) -> bytes:
    """A provider response (litellm's ModelResponse, or the OpenAI-shaped mapping DSPy's native
    and custom engines return) as ModelResponse JSON."""
    import litellm

    if not isinstance(response, litellm.ModelResponse):
        response = litellm.ModelResponse(**dict(response))
    text: str = response.model_dump_json()
    return text.encode()


__all__ = ["CachedLM", "as_json"]
