"""Test-wide isolation: nothing a test does may touch the real home directory.

DSPy reads DSPY_CACHEDIR when it is imported and litellm may fetch a cost map over the
network, so both are redirected before any test module imports them.
"""

from __future__ import annotations

import os
import tempfile

_SANDBOX = tempfile.mkdtemp(prefix="dspyops-tests-")
os.environ["HOME"] = _SANDBOX
os.environ["DSPY_CACHEDIR"] = os.path.join(_SANDBOX, "dspy_cache")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("DSPYOPS_LOG_LEVEL", "warning")
# Ray: only the session's cluster (tests/support/ray_cluster.py), never one a stray call
# starts under /tmp/ray; and no usage report leaves the machine
os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

# CI runs the property tests with a fixed seed, so a run is reproducible; local runs keep
# exploring new examples (and store the failures they find in .hypothesis/).
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# fixtures shared across test directories: the bad-input tests' module-scoped `servers`,
# the connection tests' fake provider and planted environment, the session's PostgreSQL and
# its local Ray cluster
pytest_plugins = [
    "tests.support.bad_input",
    "tests.support.connections",
    "tests.support.postgres",
    "tests.support.ray_cluster",
]
