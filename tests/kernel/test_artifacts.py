"""Content-addressed program artifacts: encoding, verification, the store, plain-DSPy loading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dspy
import pytest

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound, decode_artifact, encode_artifact
from dspyops.artifacts.files import FileArtifactStore
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, load_program, program_state
from dspyops.programs.spec import ProgramSpec

SPEC = ProgramSpec("Predict", "text -> label", "Route the ticket.")


def _state() -> dict:
    module = build_module(SPEC)
    module.demos = [dspy.Example(text="Where is my parcel? ünïcode ✓", label="shipping").with_inputs("text")]
    return program_state(module)


def test_encode_is_canonical_and_addressed() -> None:
    digest, data = encode_artifact(SPEC, _state(), LMConfig())
    assert digest == hashlib.sha256(data).hexdigest()
    body = json.loads(data)
    assert set(body) == {"spec", "state", "lm", "dspy_version"}
    assert body["dspy_version"] == dspy.__version__
    assert data == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert "ünïcode ✓".encode() in data  # UTF-8, not \u escapes
    assert encode_artifact(SPEC, _state(), LMConfig())[0] == digest  # deterministic


def test_decode_round_trip_and_load() -> None:
    digest, data = encode_artifact(SPEC, _state(), LMConfig(temperature=0.5))
    artifact = decode_artifact(data, digest)
    assert artifact.digest == digest and artifact.spec == SPEC
    assert artifact.lm == LMConfig(temperature=0.5)
    module = load_program(artifact.spec, artifact.state)
    assert module.demos[0]["label"] == "shipping"


def test_decode_verifies_before_parsing() -> None:
    digest, data = encode_artifact(SPEC, _state(), LMConfig())
    with pytest.raises(ArtifactCorrupt, match="digest mismatch"):
        decode_artifact(data.replace(b"shipping", b"billing!"), digest)
    junk = b"not json"
    with pytest.raises(ArtifactCorrupt, match="not UTF-8 JSON"):
        decode_artifact(junk, hashlib.sha256(junk).hexdigest())
    wrong_shape = b'{"spec":{}}'
    with pytest.raises(ArtifactCorrupt, match="lacks the keys"):
        decode_artifact(wrong_shape, hashlib.sha256(wrong_shape).hexdigest())
    with pytest.raises(ValueError, match="digest"):
        decode_artifact(data, "abc")
    bad_lm = data.replace(b'"temperature":0.0', b'"temperature":9.0')
    with pytest.raises(ArtifactCorrupt, match="bad lm config: temperature"):
        decode_artifact(bad_lm, hashlib.sha256(bad_lm).hexdigest())


def test_no_secret_in_artifact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSPYOPS_TEST_KEY", "sk-very-secret")
    config = LMConfig(connection="openai", model="gpt-4o-mini")
    _, data = encode_artifact(SPEC, _state(), config)
    assert b"sk-very-secret" not in data and b'"connection":"openai"' in data
    # a version from an allowed request endpoint records the variable's name, never its value
    config = LMConfig(connection="openai", model="gpt-4o-mini", api_key_env="DSPYOPS_TEST_KEY")
    _, data = encode_artifact(SPEC, _state(), config)
    assert b"sk-very-secret" not in data and b"DSPYOPS_TEST_KEY" in data


def test_encode_rejects_non_json_state() -> None:
    with pytest.raises(ValueError, match="state"):
        encode_artifact(SPEC, {"x": object()}, LMConfig())
    with pytest.raises(ValueError, match="state"):
        encode_artifact(SPEC, {"x": float("nan")}, LMConfig())


def test_store_put_get_has(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    digest, data = encode_artifact(SPEC, _state(), LMConfig())
    assert not store.has(digest)
    assert store.put(data) == digest
    assert store.put(data) == digest  # idempotent
    path = tmp_path / "sha256" / digest[:2] / f"{digest}.json"
    assert path.read_bytes() == data
    assert store.has(digest) and store.get(digest) == data
    assert store.load(digest).spec == SPEC
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]  # temp file renamed away


def test_store_missing_and_corrupt(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    with pytest.raises(ArtifactNotFound):
        store.get("0" * 64)
    digest = store.put(b'{"a":1}')
    store.path_for(digest).write_bytes(b'{"a":2}')
    with pytest.raises(ArtifactCorrupt):
        store.get(digest)
    with pytest.raises(ValueError, match="digest"):
        store.has("../../etc/passwd")


def test_state_loads_with_plain_dspy(tmp_path: Path) -> None:
    """The artifact's state part is exactly a DSPy save file: plain module.load reads it."""
    for kind in ("Predict", "ChainOfThought"):
        spec = ProgramSpec(kind, "text -> label")
        module = build_module(spec)
        module.predictors()[0].demos = [dspy.Example(text="I was charged twice", label="billing")]
        module.predictors()[0].signature = module.predictors()[0].signature.with_instructions("Sort tickets.")
        digest, data = encode_artifact(spec, program_state(module), LMConfig())
        state = decode_artifact(data, digest).state
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(state), encoding="utf-8")
        plain = (
            dspy.ChainOfThought("text -> label")
            if kind == "ChainOfThought"
            else dspy.Predict("text -> label")
        )
        plain.load(str(path))
        predictor = plain.predictors()[0]
        assert predictor.signature.instructions == "Sort tickets."
        assert predictor.demos[0]["label"] == "billing"
