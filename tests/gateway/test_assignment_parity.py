"""The gateway's sticky assignment against the official GrowthBook Python SDK (`growthbook`,
a test dependency), for any routing key: hash value and variant, over random Unicode keys,
seeds, weights, coverage and hash versions 1 and 2.

GrowthBook's JavaScript SDK hashes UTF-16 code units (`str.charCodeAt(i)`); the Python SDK
does the same (`growthbook.core.fnv1a32`). For keys in the Basic Multilingual Plane a code
unit is a code point; outside it (emoji, historic scripts, rare CJK) a character is two
code units, a surrogate pair, and the gateway hashes both, as the JavaScript SDK does.
The shared cross-language cases (tests/gateway/test_assignment_conformance.py) are all ASCII, which
is why hashing UTF-8 bytes passed them and still put 159 of 2,000 mixed keys in another arm.
"""

from __future__ import annotations

import random
from pathlib import Path

import growthbook
from growthbook.core import chooseVariation, gbhash, getBucketRanges
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspyops.client import GatewayClient
from dspyops.state import DeploymentState, ExperimentState
from gateway_svc.assignment import bucket_ranges, choose_variation, fnv1a32, gb_hash, run_experiment
from gateway_svc.routing import decide
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from tests.support.harness import ServerThread
from tests.support.logs import write_log

CASES = 2_000  # examples per property (hypothesis)

# Basic Multilingual Plane without surrogates (a routing key arrives as proto3 string: UTF-8)
BMP = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
COMBINING_AND_CJK = st.characters(categories=("Mn", "Lo"), max_codepoint=0xFFFF)
ANY = st.characters(exclude_categories=("Cs",))  # the astral planes too
BMP_KEYS = st.one_of(
    st.text(BMP, min_size=1, max_size=40), st.text(COMBINING_AND_CJK, min_size=1, max_size=20)
)
SEEDS = st.text(BMP, max_size=30)


@st.composite
def experiments(draw: st.DrawFn) -> dict:
    n = draw(st.integers(2, 5))
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    total = sum(raw)
    # weights that sum to 1 (as StartExperiment requires), and sometimes ones that do not
    # (the SDKs then fall back to equal weights; so must we)
    weights = [w / total for w in raw] if total > 0 and draw(st.booleans()) else raw
    return {
        "n": n,
        "weights": weights,
        "coverage": draw(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, -0.5, 1.5]))),
        "seed": draw(SEEDS),
        "hash_version": draw(st.sampled_from([1, 2])),
    }


def sdk_run(key: str, exp: dict) -> growthbook.Result:
    sdk = growthbook.GrowthBook(attributes={"id": key})
    return sdk.run(
        growthbook.Experiment(
            key="exp",
            variations=list(range(exp["n"])),
            weights=exp["weights"],
            coverage=exp["coverage"],
            seed=exp["seed"] or None,
            hashVersion=exp["hash_version"],
        )
    )


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=BMP_KEYS, exp=experiments())
def test_bmp_keys_get_the_sdks_hash_and_variant(key: str, exp: dict) -> None:
    seed = exp["seed"] or "exp"  # the SDK's seed defaults to the experiment key
    assert gb_hash(seed, key, exp["hash_version"]) == gbhash(seed, key, exp["hash_version"])
    ranges = bucket_ranges(exp["n"], exp["coverage"], exp["weights"])
    assert ranges == getBucketRanges(exp["n"], exp["coverage"], exp["weights"])
    n = gb_hash(seed, key, exp["hash_version"])
    assert n is not None and choose_variation(n, ranges) == chooseVariation(n, ranges)

    result = sdk_run(key, exp)
    ours = run_experiment(
        {"id": key},
        {
            "key": "exp",
            "variations": list(range(exp["n"])),
            "weights": exp["weights"],
            "coverage": exp["coverage"],
            "seed": exp["seed"],
            "hashVersion": exp["hash_version"],
        },
    )
    assert ours == (result.value, result.inExperiment, result.hashUsed)


def _deployment(exp: dict) -> DeploymentState:
    arms = [f"1.{i}.0" for i in range(exp["n"])]
    return DeploymentState(
        name="web",
        program="p",
        experiment=ExperimentState(
            experiment_id="exp-1",
            control=arms[0],
            treatments=tuple(arms[1:]),
            weights=tuple(exp["weights"]),
            metric="binary",
            alpha=0.05,
            min_samples_per_arm=10,
            sequential=False,
            hash_version=exp["hash_version"],
            seed=exp["seed"] or "exp",
            coverage=exp["coverage"],
        ),
    )


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=BMP_KEYS, exp=experiments())
def test_the_gateways_decision_is_the_sdks_variant(key: str, exp: dict) -> None:
    """What Predict serves (routing.decide on an experiment): the SDK's variant and hash."""
    exp = {**exp, "seed": exp["seed"] or "exp", "coverage": min(max(exp["coverage"], 0.0), 1.0)}
    decision = decide(_deployment(exp), key)
    result = sdk_run(key, exp)
    assert decision.hash_value == gbhash(exp["seed"], key, exp["hash_version"])
    if result.inExperiment:
        assert decision.hash_value == result.bucket
        assert (decision.bucket, decision.experiment_id) == (result.variationId, "exp-1")
    else:  # outside the coverage: control serves, not counted in the experiment
        assert (decision.bucket, decision.experiment_id) == (0, "")


@settings(max_examples=CASES, deadline=None)
@given(key=st.text(ANY, min_size=1, max_size=20), seed=SEEDS, version=st.sampled_from([1, 2]))
def test_keys_outside_the_bmp_hash_as_utf16_code_units_like_the_sdks(
    key: str, seed: str, version: int
) -> None:
    assert gb_hash(seed, key, version) == gbhash(seed, key, version)


def _js_hash(value: str) -> int:
    """hashFnv32a of GrowthBook's JavaScript SDK, spelled out: FNV-1a over charCodeAt(i)."""
    units = value.encode("utf-16-le", "surrogatepass")
    h = 0x811C9DC5
    for i in range(0, len(units), 2):
        h ^= units[i] | units[i + 1] << 8
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def test_pinned_values_for_non_ascii_and_astral_keys() -> None:
    assert fnv1a32("josé") == 1843599586  # the key: UTF-8 bytes gave 3957156263
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16: two units hashed, as in JavaScript
    assert fnv1a32("😀") == _js_hash("😀") == _js_hash("\ud83d\ude00")
    assert fnv1a32("😀") != fnv1a32("\U0001f600".encode("utf-8").decode("latin-1"))
    for key in ("user-42", "josé", "用户", "e\u0301", "😀 rocket 🚀", "𠀀"):
        assert fnv1a32(key) == _js_hash(key), key


def test_predict_on_a_real_gateway_serves_the_sdks_arm_for_non_ascii_keys(tmp_path: Path) -> None:
    """Through Predict (proto strings on the wire, a real gateway on a real log): each key's
    arm and hash are the SDK's, for hash versions 1 and 2."""
    write_log(tmp_path / "log.db", versions=3)
    gateway = ServerThread(
        lambda: start_gateway(GatewayConfig(log=str(tmp_path / "log.db"), canary_interval=0))
    )
    rng = random.Random(11)
    alphabet = "abcxyz019-_éüñßøçłżčšőİıΩλжяשعहह्ไก用户名测试가나다\u0301\u0308"
    keys = ["josé", "用户", "e\u0301", "rocket 🚀"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(150)
    ]
    try:
        with GatewayClient(gateway.address, timeout=30) as gw:
            for hash_version, weights in [(2, [0.2, 0.5, 0.3]), (1, [0.5, 0.25, 0.25])]:
                gw.start_experiment(
                    "web",
                    "1.0.0",
                    ["1.1.0", "1.2.0"],
                    weights=weights,
                    seed=f"parity-{hash_version}",
                    hash_version=hash_version,
                    coverage=0.9,
                )
                exp = {"n": 3, "weights": weights, "coverage": 0.9, "seed": f"parity-{hash_version}"}
                for key in keys:
                    response = gw.predict("web", {"text": "refund please"}, routing_key=key)
                    result = sdk_run(key, {**exp, "hash_version": hash_version})
                    if result.inExperiment:
                        assert response.bucket == result.variationId, key
                        assert response.version == f"1.{result.variationId}.0", key
                        assert response.experiment_id, key
                    else:
                        assert (response.bucket, response.experiment_id) == (0, ""), key
                    explained = gw.explain_prediction(response.prediction_id, key)
                    assert explained.hash_value == gbhash(exp["seed"], key, hash_version), key
                gw.stop_experiment("web", reason="next hash version")
    finally:
        gateway.stop()
