"""One local Ray cluster per test session, for the tests that run jobs on the Ray executor.

`executor` is the job tests' parameter: "thread" unless a test is parametrized over it
(`@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)`); "ray" starts the
session's cluster the first time a test asks for it. Ray's files (sockets, logs, the
object store's spill) go into a temporary directory, not /tmp/ray; its auth token goes
under the sandboxed HOME of tests/conftest.py.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator

import pytest

EXECUTORS = ["thread", "ray"]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The session's cluster: ray.init(num_cpus=2) in this process; its GCS address."""
    import ray

    # short: Ray's Unix socket paths under it must stay within the 107-byte limit
    temp_dir = tempfile.mkdtemp(prefix="dspyops-ray-")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def executor(request: pytest.FixtureRequest) -> str:
    name = str(getattr(request, "param", "thread"))
    if name == "ray":
        request.getfixturevalue("ray_cluster")
    return name
