"""Fixtures of the integration tier's ENF tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from covidtracer import db, settings
from covidtracer.enfkeys import schema
from covidtracer.enfkeys.settings import EnfSettings, enf_settings


@pytest.fixture
def enf(
    service_env: dict[str, str], pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EnfSettings]:
    """The ENF settings of the test's own migrated schema, with moto and the stand-ins."""
    monkeypatch.setenv("DATABASE_URL", pg_schema)
    settings.reset()
    db.close()
    config = enf_settings()
    schema.migrate(config.database)
    yield config
    db.close()
