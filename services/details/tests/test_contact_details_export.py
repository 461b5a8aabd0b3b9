"""Issue 4 end to end: details changed through this API reach the NCTS export file — the
``PersonalDetails`` stream (pumped as Lambda's mapping would) → the export's stream use case
→ SQS → ``export_personal_details`` → the JSON Lines file in S3, tombstone included.

The export side runs through the shared package's use cases (the export service's own
``app`` module cannot be imported beside this one); its test rig is reused from
``shared/tests/integration/nctsexport``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import Api
from sign_in_flow import SignedIn

from covidtracer.personaldetails.model import parse_iso
from tracerstack.bootstrap import Bootstrap

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared/tests/integration/nctsexport"))
from export_rig import Rig

PATH = "/user/details"


def test_details_changed_through_the_api_arrive_in_the_export_file_and_a_delete_as_a_tombstone(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    rig = Rig(aws_stack)
    alice, bob = sign_in(), sign_in()
    status, _, _ = api.send(
        "PUT",
        PATH,
        {
            "firstName": "Aroha",
            "lastName": "Smith",
            "phone": "+64 21 012 3456",
            "dateOfBirth": "1990-01-02",
            "ethnicity": {"selected": ["Māori", "NZ European"]},
        },
        alice.headers,
    )
    assert status == 200
    status, _, alices = api.send(
        "PATCH", PATH, {"firstName": "Kiri", "phone": "+64 27 555 0100"}, alice.headers
    )
    assert status == 200
    status, _, bobs = api.send(
        "PUT",
        PATH,
        {"firstName": "Bo", "middleName": "Tama", "lastName": "Ngata", "phone": "+1 202 555 0123",
         "gender": "male", "ethnicity": {"other": "Tongan"}},
        bob.headers,
    )  # fmt: skip
    assert status == 200

    assert rig.pump() == 3  # INSERT, MODIFY, INSERT
    result = rig.export(datetime.now(UTC))
    assert result.key is not None
    expected = sorted(
        [
            {
                "userId": alice.user_id,
                "email": alice.email,
                "firstName": "Kiri",
                "middleName": None,
                "lastName": "Smith",
                "phone": "+64275550100",
                "dateOfBirth": "1990-01-02",
                "gender": None,
                "ethnicity": {"selected": ["Māori", "NZ European"], "other": None},
                "updatedAt": alices["updatedAt"],
                "deleted": False,
            },
            {
                "userId": bob.user_id,
                "email": bob.email,
                "firstName": "Bo",
                "middleName": "Tama",
                "lastName": "Ngata",
                "phone": "+12025550123",
                "dateOfBirth": None,
                "gender": "male",
                "ethnicity": {"selected": [], "other": "Tongan"},
                "updatedAt": bobs["updatedAt"],
                "deleted": False,
            },
        ],
        key=lambda line: str(line["userId"]),
    )
    assert rig.lines(result.key) == expected
    assert rig.queued() == 0

    before_delete = datetime.now(UTC).replace(microsecond=0)
    assert api.send("DELETE", PATH, headers=alice.headers)[0] == 204
    assert rig.pump() == 1  # REMOVE
    later = rig.export(datetime.now(UTC))
    assert later.key is not None and later.key != result.key
    [tombstone] = rig.lines(later.key)
    assert tombstone == {
        "userId": alice.user_id,
        "updatedAt": tombstone["updatedAt"],
        "deleted": True,
    }
    deleted_at = parse_iso(tombstone["updatedAt"])
    assert before_delete - timedelta(seconds=1) <= deleted_at <= datetime.now(UTC)


def test_the_onboarding_patch_of_a_new_user_reaches_the_export_file(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    """The journey of apps 3.0.0-6.1.1: one PATCH right after the first sign-in, no record
    yet (CLIENTS.md) -> the record -> NCTS's file. A phone-less PATCH still reaches it."""
    rig = Rig(aws_stack)
    new, quiet = sign_in(), sign_in()
    onboarding = {"firstName": "Kiri", "lastName": "Ngata", "phone": "+64 210 123 456"}
    status, _, kiri = api.send("PATCH", PATH, onboarding, new.headers)
    assert status == 200, kiri
    names = {"firstName": "Bo", "lastName": "Ngata"}
    status, _, bo = api.send("PATCH", PATH, names, quiet.headers)
    assert status == 200, bo
    assert rig.pump() >= 2  # two INSERTs (and whatever earlier tests of the module left)
    result = rig.export(datetime.now(UTC))
    assert result.key is not None
    lines = {line["userId"]: line for line in rig.lines(result.key)}
    assert lines[new.user_id] == {
        "userId": new.user_id,
        "email": new.email,
        "firstName": "Kiri",
        "middleName": None,
        "lastName": "Ngata",
        "phone": "+64210123456",
        "dateOfBirth": None,
        "gender": None,
        "ethnicity": None,
        "updatedAt": kiri["updatedAt"],
        "deleted": False,
    }
    assert lines[quiet.user_id]["phone"] is None and lines[quiet.user_id]["firstName"] == "Bo"
