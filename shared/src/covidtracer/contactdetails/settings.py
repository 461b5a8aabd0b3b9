"""The details app's settings, read as one tree so every problem is reported at once
(``details_settings``): the core's, sign-in's (``covidtracer.signin.settings``), contact
details' own (the tables and the user pool it reads), and those the details app's other
domains declare (``covidtracer.diary.settings``, ``covidtracer.exposures.settings``).

Contact details has no knobs beyond its tables and the user pool; it hosts the tree
because every use case of the details app starts from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from covidtracer import config
from covidtracer.config import Env, setting
from covidtracer.diary.settings import DiarySettings
from covidtracer.exposures.settings import ExposureEventSettings
from covidtracer.settings import AwsServiceSettings, FcmSettings, PartnerSettings, Tables
from covidtracer.signin.settings import SignInSettings

APP_CLIENT_PLATFORMS = ("ios", "android", "web")


def _client_ids(env: Env, name: str, default: Any) -> dict[str, str]:
    """A JSON object of strings, e.g. ``APP_CLIENT_IDS={"ios": "…", "android": "…"}``."""
    raw = env.text(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        env.problems.append(f"{name} must be a JSON object")
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        env.problems.append(f"{name} must be a JSON object of non-empty strings")
        return {}
    if missing := [k for k in APP_CLIENT_PLATFORMS if k not in value]:
        env.problems.append(f"{name} lacks {', '.join(missing)}")
    return dict(value)


@dataclass(frozen=True, kw_only=True)
class DetailsSettings(AwsServiceSettings):
    """The app API (``services/details``)."""

    SERVICE = "details"
    tables: Tables
    user_pool_id: str = setting("USER_POOL_ID")
    app_client_ids: Mapping[str, str] = setting("APP_CLIENT_IDS", parse=_client_ids)
    sign_in: SignInSettings
    partners: PartnerSettings
    fcm: FcmSettings
    diary: DiarySettings
    events: ExposureEventSettings


details_settings = config.cached(DetailsSettings.from_env)
