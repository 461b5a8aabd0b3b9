"""Google's contract on real PostgreSQL and moto (KMS, Secrets Manager): a code claimed once
across both contracts under concurrency, concurrent twins of one publish, the revision
keyring's KMS-wrapped data keys, and the export's read of revised keys."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg2

from covidtracer import aws, db
from covidtracer.enffiles import db as files_sql
from covidtracer.enffiles.model import Window
from covidtracer.enfkeys import db as keys_sql
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.publish import db as publish_sql
from covidtracer.publish import revision
from covidtracer.publish import service as publish
from covidtracer.publish import wiring as publish_wiring
from covidtracer.publish.keyring import RevisionKeyring
from covidtracer.verification import db as verification_sql
from covidtracer.verification import service as verification
from covidtracer.verification import wiring as verification_wiring
from covidtracer.verification.model import JsonRequest
from tracerstack.enx import enx_keys, tekmac
from tracerstack.exportreader import unpack_keys

NOW = datetime.now(UTC).replace(microsecond=0)


def _together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` for each i on threads released at once; the results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_a_code_is_claimed_exactly_once_when_both_contracts_race_for_it(enf: EnfSettings) -> None:
    digest = os.urandom(32)
    with db.transaction(enf.database) as cur:
        keys_sql.insert_code(cur, digest, date.today(), 1, NOW, NOW + timedelta(hours=1))

    def claim(index: int) -> bool:
        with db.transaction(enf.database) as cur:
            if index % 2:
                return keys_sql.claim_code(cur, digest, NOW) is not None
            return verification_sql.claim_code(cur, digest, NOW).outcome == "claimed"

    results = _together(16, claim)
    assert results.count(True) == 1 and results.count(False) == 15
    with db.transaction(enf.database) as cur:
        assert verification_sql.claim_code(cur, digest, NOW).outcome == "used"
        assert verification_sql.claim_code(cur, os.urandom(32), NOW).outcome == "not_found"


def _certificate(enf: EnfSettings, keys: list[dict[str, Any]], secret: bytes) -> str:
    """A certificate for ``keys`` the way a phone gets one: an NCTS code, then both calls."""
    from covidtracer.enfkeys import model as keys_model
    from covidtracer.enfkeys.service import code_hmac

    deps = verification_wiring.deps()
    code = f"{int.from_bytes(os.urandom(3), 'big') % 10**6:06d}"
    with db.transaction(enf.database) as cur:
        digest = code_hmac(deps.code_hash_key(), keys_model.app_code_hash(code))
        keys_sql.insert_code(cur, digest, date.today(), 1, NOW, NOW + timedelta(hours=1))
    api_key = json.loads(aws.secret_string(enf.verification.apps_secret_id))["apiKey"]

    def call(use_case: Callable[..., dict[str, str]], body: dict[str, str]) -> dict[str, str]:
        request = JsonRequest(json.dumps(body).encode(), "application/json", api_key)
        return use_case(deps, request, datetime.now(UTC))

    token = call(verification.verify, {"code": code})["token"]
    return call(verification.certificate, {"token": token, "ekeyhmac": tekmac(keys, secret)})[
        "certificate"
    ]


def test_concurrent_twins_of_one_publish_store_the_keys_once_and_all_succeed(
    enf: EnfSettings,
) -> None:
    keys, secret = enx_keys(3), os.urandom(16)
    body = json.dumps(
        {
            "temporaryExposureKeys": keys,
            "healthAuthorityID": "nz.govt.health.covidtracer",
            "verificationPayload": _certificate(enf, keys, secret),
            "hmacKey": base64.b64encode(secret).decode(),
        }
    ).encode()
    deps = publish_wiring.deps()

    def twin(index: int) -> dict[str, Any]:
        return publish.publish(deps, JsonRequest(body, "application/json"), datetime.now(UTC))

    answers = _together(6, twin)
    assert all(isinstance(a, dict) for a in answers), answers
    assert {a["insertedExposures"] for a in answers} == {3}
    assert all(a["revisionToken"] for a in answers)
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM exposures")
        assert cur.fetchone() == (3,)


def test_revision_data_keys_are_wrapped_by_kms_and_shared_by_every_keyring(
    enf: EnfSettings,
) -> None:
    first = RevisionKeyring(enf.database, enf.publish.revision_key_id, 0)
    second = RevisionKeyring(enf.database, enf.publish.revision_key_id, 0)
    key_id, data_key = first.current(NOW)
    assert second.current(NOW) == (key_id, data_key) and len(data_key) == 32
    with psycopg2.connect(enf.database.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT wrapped_key FROM revision_keys")
        (wrapped,) = [bytes(row[0]) for row in cur.fetchall()]
    assert data_key not in wrapped  # only the KMS-wrapped form is stored
    keys = [revision.RevisableKey(os.urandom(16), 2_700_000, 144)]
    token = revision.seal(keys, key_id, data_key, 28)
    assert revision.open_token(token, second.all(NOW)) == frozenset(keys)


def test_the_export_reads_a_key_revised_in_the_window_with_its_revised_values(
    enf: EnfSettings,
) -> None:
    day = int(NOW.timestamp()) // 86_400 * 86_400
    start = day // 600 - 3 * 144
    rows = [(os.urandom(16), start + 144 * i) for i in range(3)]
    with db.transaction(enf.database) as cur:
        for key, rsn in rows:
            cur.execute(
                "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
                " transmission_risk_level, report_type, days_since_onset, created_at)"
                " VALUES (%s, %s, 144, 4, 2, 0, %s)",
                (key, rsn, datetime.fromtimestamp(day, UTC) - timedelta(days=1)),
            )
        revised_at = datetime.fromtimestamp(day + 3600, UTC)
        assert publish_sql.revise_key(cur, rows[0][0], 1, -1, 2, revised_at)
        assert not publish_sql.revise_key(cur, rows[0][0], 5, -1, 6, revised_at)  # once only
        publish_sql.revise_key(cur, rows[1][0], 1, 0, 2, revised_at - timedelta(days=1))
    with db.transaction(enf.database) as cur:
        before = files_sql.packed_revised_keys(cur, Window(day, day + 3600, "delta"))
        within = files_sql.packed_revised_keys(cur, Window(day, day + 7200, "delta"))
    assert before == b""
    (key,) = unpack_keys(within)
    assert (key.key_data, key.report_type, key.days_since_onset, key.transmission_risk_level) == (
        rows[0][0],
        1,
        -1,
        2,
    )


def test_a_data_key_kms_no_longer_unwraps_is_passed_over_and_a_new_one_made(
    enf: EnfSettings,
) -> None:
    # E.g. its KMS key was disabled or its ciphertext damaged: the newest cannot be unwrapped.
    kms_key = enf.publish.revision_key_id
    with db.transaction(enf.database) as cur:
        lost = publish_sql.insert_revision_key(cur, kms_key, os.urandom(120), NOW)
        former = publish_sql.insert_revision_key(cur, "arn:a-former-kms-key", b"x", NOW)
    keyring = RevisionKeyring(enf.database, enf.publish.revision_key_id, 0)
    key_id, data_key = keyring.current(NOW)
    assert key_id not in (lost, former) and len(data_key) == 32
    assert set(keyring.all(NOW)) == {key_id}  # a former KMS key's rows are not even read
    keys = [revision.RevisableKey(os.urandom(16), 2_700_000, 144)]
    assert revision.open_token(revision.seal(keys, key_id, data_key, 28), keyring.all(NOW))
