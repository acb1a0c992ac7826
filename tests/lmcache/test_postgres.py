"""The LM cache contract on PostgreSQL: table ``lm_cache`` in the log's own database."""

from __future__ import annotations

import threading

import psycopg
import pytest

from dspyops.eventlog import open_store
from dspyops.lmcache import open_lm_cache
from dspyops.lmcache.postgres import PostgresLMCache, without_password
from tests.lmcache.contract import LMCacheContract


class TestPostgres(LMCacheContract):
    @pytest.fixture
    def log_url(self, postgres_url: str) -> str:
        return postgres_url


def test_the_table_is_beside_the_events_table(postgres_url: str) -> None:
    store = open_store(postgres_url)
    cache = open_lm_cache(postgres_url + "?mode=rw")  # dspyops's own option is not libpq's
    try:
        assert isinstance(cache, PostgresLMCache)
        with psycopg.connect(postgres_url) as conn:
            rows = conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'lm_cache' ORDER BY ordinal_position"
            ).fetchall()
            keys = conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'lm_cache'::regclass AND i.indisprimary"
            ).fetchall()
        assert rows == [("job_id", "text", "NO"), ("key", "text", "NO"), ("response", "bytea", "NO")]
        assert sorted(k[0] for k in keys) == ["job_id", "key"]
    finally:
        cache.close()
        store.close()


def test_replicas_creating_the_table_at_once_all_succeed(postgres_url: str) -> None:
    errors: list[BaseException] = []
    caches: list[PostgresLMCache] = []

    def open_one() -> None:
        try:
            cache = open_lm_cache(postgres_url)
            assert isinstance(cache, PostgresLMCache)
            caches.append(cache)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for cache in caches:
        cache.close()
    assert errors == [] and len(caches) == 4


def test_a_ray_task_is_handed_the_url_without_its_password() -> None:
    assert without_password("postgresql://me:s3cret@db:5432/log?sslmode=require&password=x") == (
        "postgresql://me@db:5432/log?sslmode=require"
    )
    assert without_password("postgresql:///log?host=/tmp/pg") == "postgresql:///log?host=/tmp/pg"
    assert without_password("postgresql://me@db/log") == "postgresql://me@db/log"


def test_the_url_handed_on_reaches_the_same_table(postgres_url: str) -> None:
    cache = open_lm_cache(postgres_url)
    other = open_lm_cache(cache.log_url)
    try:
        cache.put("job-a", "k1", b"{}")
        assert other.get("job-a", "k1") == b"{}"
    finally:
        other.close()
        cache.close()
