"""Every app deploys alike: stages, no secrets in config, a lean cold start, debug off.

Each app is imported by a fresh interpreter in its own folder (every app module is named
``app``, and a cold start is what is measured), so all four are checked in one process.
"""

from __future__ import annotations

import pytest

from tracerstack import service_checks
from tracerstack.package import SERVICE_NAMES


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_config_has_every_stage_and_no_secrets_or_local_hosts(service: str) -> None:
    assert service_checks.problems_in_config(service) == []


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_import_app_loads_no_heavy_library_before_first_use(service: str) -> None:
    assert service_checks.eagerly_imported_heavy_modules(service) == set()


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_debug_is_off(service: str) -> None:
    probe = "from app import app; print(app.debug is False, app.app_name)"
    debug_off, app_name = service_checks.run_in_fresh_interpreter(service, probe).split()
    assert debug_off == "True"
    assert app_name == f"covidtracer-{service}"
