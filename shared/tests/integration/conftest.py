"""Fixtures of the integration tier's ENF tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from covidtracer import db, settings
from covidtracer.enfkeys import schema
from covidtracer.enfkeys.settings import EnfSettings, enf_settings


@pytest.fixture
def enf(
    service_env: dict[str, str],
    pg_schema: str,
    pg_schema_direct: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EnfSettings]:
    """The ENF settings of the test's own migrated schema, with moto and the stand-ins.

    Migrations run on the server itself (they hold a session lock); the code under test
    reaches the schema through the pooler, as it reaches Aurora through RDS Proxy."""
    monkeypatch.setenv("DATABASE_URL", pg_schema_direct)
    settings.reset()
    schema.migrate(enf_settings().database)
    monkeypatch.setenv("DATABASE_URL", pg_schema)
    settings.reset()
    db.close()
    config = enf_settings()
    yield config
    db.close()
