"""GrowthBook's own cross-language cases: the sections our assignment implements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_svc.assignment import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    gb_hash,
    in_namespace,
    run_experiment,
)

# GrowthBook's cross-language cases (growthbook-python tests/cases.json, MIT; its "source"
# key names the commit), kept in the repository so a clone runs them.
CASES_FILE = Path(__file__).resolve().parent.parent / "data" / "growthbook_cases.json"


CASES = json.loads(CASES_FILE.read_text())


@pytest.mark.parametrize("seed,value,version,expected", CASES["hash"])
def test_hash(seed: str, value: str, version: int, expected: float | None) -> None:
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize("name,args,expected", CASES["getBucketRange"])
def test_bucket_range(name: str, args: list, expected: list) -> None:
    n, coverage, weights = args
    got = bucket_ranges(n, coverage, weights)
    assert len(got) == len(expected), name
    for (a, b), (ea, eb) in zip(got, expected, strict=True):
        assert a == pytest.approx(ea, abs=1e-6) and b == pytest.approx(eb, abs=1e-6), name


@pytest.mark.parametrize("name,n,ranges,expected", CASES["chooseVariation"])
def test_choose_variation(name: str, n: float, ranges: list, expected: int) -> None:
    assert choose_variation(n, [tuple(r) for r in ranges]) == expected, name


@pytest.mark.parametrize("name,user,namespace,expected", CASES["inNamespace"])
def test_in_namespace(name: str, user: str, namespace: list, expected: bool) -> None:
    assert in_namespace(user, tuple(namespace)) == expected, name


@pytest.mark.parametrize("n,expected", CASES["getEqualWeights"])
def test_equal_weights(n: int, expected: list) -> None:
    assert equal_weights(n) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("name,context,experiment,value,in_experiment,hash_used", CASES["run"])
def test_run(
    name: str, context: dict, experiment: dict, value: object, in_experiment: bool, hash_used: bool
) -> None:
    assert run_experiment(context.get("attributes", {}), experiment) == (value, in_experiment, hash_used), (
        name
    )
