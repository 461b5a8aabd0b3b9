"""The auth app deploys like every other: stages, no secrets in config, a lean cold start."""

from __future__ import annotations

from tracerstack import service_checks


def test_config_has_every_stage_and_no_secrets_or_local_hosts() -> None:
    assert service_checks.problems_in_config("auth") == []


def test_import_app_loads_no_heavy_library_before_first_use() -> None:
    assert service_checks.eagerly_imported_heavy_modules("auth") == set()


def test_debug_is_off() -> None:
    from app import app

    assert app.debug is False
    assert app.app_name == "covidtracer-auth"
