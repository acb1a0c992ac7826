"""Routing keys are not reversible: prediction records hold an HMAC of the key under a
per-log secret (never in the log), not an unsalted sha256 that anyone could test guessed
user ids against; ExplainPrediction returns that HMAC, and `explain --key` still matches
by recomputing it (the old sha256 for records written before)."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import stat
from pathlib import Path

from dspyops.client import GatewayClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from tests.support.harness import ServerThread
from tests.support.logs import write_log

KEY = "user-42"  # a predictable routing key: sequential user ids are the common case


def test_records_hold_no_reversible_digest_and_explain_still_matches(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    write_log(log)
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=str(log), canary_interval=0)))
    try:
        with GatewayClient(gateway.address) as gw:
            prediction = gw.predict("web", {"text": "my invoice is wrong"}, routing_key=KEY).prediction_id
            explained = gw.explain_prediction(prediction, KEY)
            assert explained.routing_key_matches
            assert not gw.explain_prediction(prediction, "user-43").routing_key_matches
            plain = hashlib.sha256(KEY.encode()).hexdigest()
            assert explained.routing_key_hash != plain and explained.hash_value >= 0

            # a reader without the key learns the decision was reproduced, not the key's hash:
            # the hashes of a predictable key under a few seeds would single it out
            blind = gw.explain_prediction(prediction)
            assert blind.reproduced and blind.hash_withheld and not blind.routing_key_matches
            assert blind.hash_value == -1.0 and blind.routing_key_hash == ""
            assert f"{explained.hash_value:.4f}" not in blind.reason and "its hash" in blind.reason
            wrong = gw.explain_prediction(prediction, "user-43")
            assert wrong.hash_withheld and wrong.routing_key_hash == "" and wrong.hash_value == -1.0

            # an old record (written before the HMAC) keeps matching through its sha256
            with sqlite3.connect(f"{log}.predictions") as conn:
                conn.execute(
                    "INSERT INTO predictions (prediction_id, deployment, program, version, bucket, "
                    "experiment_id, routing_key_sha256, hash_value, hash_version, seed, log_position, "
                    "latency_ms, error, recorded_at_us, outputs_json, shadow_of, routing_key_hmac) "
                    "SELECT 'old-record', deployment, program, version, bucket, "
                    "experiment_id, ?, hash_value, hash_version, seed, log_position, latency_ms, error, "
                    "recorded_at_us, outputs_json, shadow_of, '' FROM predictions WHERE prediction_id = ?",
                    (plain, prediction),
                )
            conn.close()
            old = gw.explain_prediction("old-record", KEY)
            assert old.routing_key_matches and old.routing_key_hash == plain and old.reproduced
            assert not gw.explain_prediction("old-record", "user-43").routing_key_matches
    finally:
        gateway.stop()

    secret_file = Path(f"{log}.secret")
    secret = secret_file.read_bytes()
    assert len(secret) == 32 and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    with sqlite3.connect(f"{log}.predictions") as conn:
        conn.row_factory = sqlite3.Row
        record = dict(
            conn.execute("SELECT * FROM predictions WHERE prediction_id = ?", (prediction,)).fetchone()
        )
    conn.close()
    assert record["routing_key_sha256"] == ""
    assert record["routing_key_hmac"] == hmac.new(secret, KEY.encode(), hashlib.sha256).hexdigest()
    assert plain not in record.values() and KEY not in record.values()
    for file in tmp_path.iterdir():  # the log, the records, their WALs: the secret is in none
        if file != secret_file and file.is_file():
            assert secret not in file.read_bytes() and secret.hex().encode() not in file.read_bytes(), file


def test_every_gateway_of_a_log_uses_its_one_secret(tmp_path: Path) -> None:
    """The secret is created once, atomically, by whichever service opens the log first."""
    log = tmp_path / "log.db"
    write_log(log)
    gateways = [
        ServerThread(
            lambda i=i: start_gateway(
                GatewayConfig(log=str(log), predictions=str(tmp_path / f"p{i}.db"), canary_interval=0)
            )
        )
        for i in range(2)
    ]
    try:
        hashes = []
        for gateway in gateways:
            with GatewayClient(gateway.address) as gw:
                prediction = gw.predict("web", {"text": "refund"}, routing_key=KEY).prediction_id
                hashes.append(gw.explain_prediction(prediction, KEY).routing_key_hash)
        assert hashes[0] == hashes[1]
    finally:
        for gateway in gateways:
            gateway.stop()
