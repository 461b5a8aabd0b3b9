"""GET /exposures and GET /data through the Chalice test client, after a real export run."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from chalice.test import Client

from covidtracer import aws
from covidtracer.enffiles import service as files
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enfkeys import tokens
from covidtracer.enfkeys.settings import enf_settings
from tracerstack.exportreader import read_export_zip

NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)


def _token(kind: str = tokens.ACCESS, key: str | None = None) -> str:
    """A token of a registration that exists (tokens of unknown ones are refused)."""
    config = enf_settings()
    registration_id = uuid.uuid4()
    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO registrations (id, created_at, verified_at) VALUES (%s, now(), now())",
            (str(registration_id),),
        )
    return tokens.issue(
        key or aws.secret_string(config.tokens.signing_secret_id),
        registration_id,
        kind=kind,
        now=datetime.now(UTC),
        lifetime=timedelta(minutes=5),
    )


def _export_one_day() -> None:
    config = enf_settings()
    created = NOW - timedelta(days=2)
    rsn = int(created.timestamp()) // 86_400 * 144 - 144
    with psycopg2.connect(config.database.url) as conn, conn.cursor() as cur:
        for i in range(3):
            cur.execute(
                "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
                " transmission_risk_level, created_at) VALUES (%s, %s, 144, 2, %s)",
                (i.to_bytes(16, "big"), rsn, created),
            )
    files.export_keys(files_wiring.deps_for(config), files.ExportRun(), NOW)


def _get(client: Client, path: str, token: str | None, accept: str = "*/*") -> object:
    # What a phone's HTTP client sends by default; the app must not require application/zip.
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.http.get(path, headers=headers)


def test_exposures_lists_files_and_data_serves_their_zip(client: Client) -> None:
    _export_one_day()
    token = _token()
    response = _get(client, "/exposures?since=0", token)
    assert response.status_code == 200  # type: ignore[attr-defined]
    files = json.loads(response.body)  # type: ignore[attr-defined]
    assert len(files) == 1 and set(files[0]) == {"id", "path"}
    assert files[0]["path"].startswith("exposures/") and files[0]["path"].endswith(".zip")
    later = json.loads(_get(client, f"/exposures/?since={files[0]['id']}", token).body)  # type: ignore[attr-defined]
    assert later == []
    data = _get(client, f"/data/{files[0]['path']}", token)
    assert data.status_code == 200  # type: ignore[attr-defined]
    assert data.headers["Content-Type"] == "application/zip"  # type: ignore[attr-defined]
    batch, _ = read_export_zip(data.body)  # type: ignore[attr-defined]
    assert len(batch.keys) == 3


def test_data_is_404_for_unknown_or_foreign_paths(client: Client) -> None:
    token = _token()
    for path in (
        "/data/exposures/0000000000-0000000000-00001.zip",
        "/data/exposures/index.txt",
        "/data/other/1634083200-1634169600-00001.zip",
    ):
        assert _get(client, path, token).status_code == 404, path  # type: ignore[attr-defined]


def test_exposures_rejects_bad_parameters(client: Client) -> None:
    # Every bad since/limit is a unit rule (test_listing_query); one reaches the route here.
    response = _get(client, "/exposures?limit=0", _token())
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert json.loads(response.body)["type"] == "urn:errors:validation"  # type: ignore[attr-defined]


@pytest.mark.parametrize("route", ["/exposures", "/data/exposures/1634083200-1634169600-00001.zip"])
def test_routes_refuse_missing_forged_or_refresh_tokens(client: Client, route: str) -> None:
    assert _get(client, route, None).status_code == 401  # type: ignore[attr-defined]
    forged = _token(key="not-the-server-key-but-just-as-long-as-one")
    assert _get(client, route, forged).status_code == 401  # type: ignore[attr-defined]
    assert _get(client, route, _token(kind=tokens.REFRESH)).status_code == 401  # type: ignore[attr-defined]


def test_data_serves_the_zip_whatever_accept_the_phone_sends(client: Client) -> None:
    _export_one_day()
    token = _token()
    files = json.loads(_get(client, "/exposures?since=0", token).body)  # type: ignore[attr-defined]
    for accept in ("*/*", "application/zip", "application/json, text/plain, */*"):
        response = _get(client, f"/data/{files[0]['path']}", token, accept=accept)
        assert response.status_code == 200, accept  # type: ignore[attr-defined]
        assert response.body[:2] == b"PK"  # type: ignore[attr-defined]
