"""The LM cache contract on the in-memory backend (``memory:`` logs)."""

from __future__ import annotations

import uuid

import pytest

from dspyops.lmcache import open_lm_cache
from dspyops.lmcache.memory import MemoryLMCache
from tests.lmcache.contract import LMCacheContract


class TestNamedMemoryLog(LMCacheContract):
    closes = False

    @pytest.fixture
    def log_url(self) -> str:
        return f"memory:lmcache-{uuid.uuid4().hex[:8]}"


class TestPrivateMemoryLog(LMCacheContract):
    shared = False  # a new private log every time: nothing to share
    closes = False

    @pytest.fixture
    def log_url(self) -> str:
        return "memory:"


def test_open_picks_memory_for_memory_logs() -> None:
    assert isinstance(open_lm_cache("memory:"), MemoryLMCache)
    assert open_lm_cache("memory:x1") is open_lm_cache("memory:x1")
    assert open_lm_cache("memory:") is not open_lm_cache("memory:")
    assert open_lm_cache("memory:x1").log_url == ""  # no other process can reach it
