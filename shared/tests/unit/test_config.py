"""The settings reader: one declaration gives the variable, type, default and bounds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from covidtracer import config
from covidtracer.config import Env, SettingsError, setting


@dataclass(frozen=True, kw_only=True)
class Inner:
    retries: int = setting("RETRIES", 2, minimum=0, maximum=5)
    mode: str = setting("MODE", "fast", choices=("fast", "safe"))

    def check(self, env: Env) -> None:
        if env.stage == "prod" and self.mode == "fast":
            env.problems.append("MODE must be safe in prod")


@dataclass(frozen=True, kw_only=True)
class Outer:
    stage: str
    name: str = setting("NAME")
    url: str | None = setting("URL", None, url=True)
    verbose: bool = setting("VERBOSE", False)
    platforms: tuple[str, ...] = setting("PLATFORMS", ("ios", "android"))
    inner: Inner


def test_defaults_come_from_the_one_declaration() -> None:
    settings = config.load(Outer, "demo", {"NAME": "n"})
    assert settings == Outer(
        stage="local",
        name="n",
        url=None,
        verbose=False,
        platforms=("ios", "android"),
        inner=Inner(),
    )
    assert Inner().retries == 2 and Inner().mode == "fast"


def test_values_are_read_with_their_types() -> None:
    settings = config.load(
        Outer,
        "demo",
        {
            "NAME": "n",
            "URL": "https://x.example",
            "VERBOSE": "yes",
            "PLATFORMS": "ios, web",
            "RETRIES": "4",
            "MODE": "safe",
            "STAGE": "prod",
        },
    )
    assert (settings.stage, settings.url, settings.verbose) == ("prod", "https://x.example", True)
    assert settings.platforms == ("ios", "web") and settings.inner == Inner(retries=4, mode="safe")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        config.load(
            Outer,
            "demo",
            {"URL": "ftp://x", "VERBOSE": "maybe", "RETRIES": "9", "MODE": "fast", "STAGE": "prod"},
        )
    assert raised.value.problems == [
        "NAME is required",
        "URL must be an http(s) URL, got 'ftp://x'",
        "VERBOSE must be true or false, got 'maybe'",
        "RETRIES must be between 0 and 5, got 9",
        "MODE must be safe in prod",
    ]
    assert str(raised.value).startswith("demo settings are invalid:\n  - NAME is required")


def test_cached_values_are_forgotten_by_reset() -> None:
    calls: list[int] = []
    value = config.cached(lambda: calls.append(1) or len(calls))
    assert (value(), value()) == (1, 1)
    config.reset()
    assert value() == 2


@dataclass(frozen=True, kw_only=True)
class Service(config.ServiceSettings):
    SERVICE = "demo-service"
    name: str = setting("NAME")


def test_a_service_reads_its_settings_and_names_itself_in_their_problems() -> None:
    assert Service.from_env({"NAME": "n"}) == Service(name="n")
    with pytest.raises(SettingsError, match=r"^demo-service settings are invalid"):
        Service.from_env({})


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        # chalice local in a service's folder: that service's settings and role credentials
        ("services/details", ".local/env-details.json"),
        ("services/details/chalicelib", ".local/env-details.json"),
        # elsewhere, or a service the stack wrote nothing for: the administrator's settings
        (".", ".local/env.json"),
        ("services/auth", ".local/env.json"),
    ],
)
def test_chalice_local_reads_the_stack_file_of_the_service_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, expected: str
) -> None:
    for made in ("shared", "services/details/chalicelib", "services/auth", ".local"):
        (tmp_path / made).mkdir(parents=True, exist_ok=True)
    (tmp_path / ".local" / "env-details.json").write_text("{}")
    for name in ("STAGE", "COVIDTRACER_SETTINGS_GIVEN", "COVIDTRACER_LOCAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CHALICE_CLI_MODE", "true")
    monkeypatch.chdir(tmp_path / folder)
    assert config._stack_env_file() == tmp_path / expected
