"""The documents phones read, as an operator set them for the stage: Parameter Store, cached.

An operator changes the exposure configuration or the notification settings of a stage by
putting a JSON document in its Parameter Store parameter (docs/operations.md); every Lambda
serves it within the cache time, with no deployment. Until a parameter exists, and whenever
one cannot be read or fails ``client_config``'s checks, the stage default is served: the
document in the stage's settings if it has one, else the one shipped in the package. A bad
document never reaches phones (one bad field stops every phone's exposure check); the error
is logged for the operator and the last good document stays in service.

Each execution environment keeps one ``ClientDocuments`` (the ENF service's ports); a cached
document is immutable and shared read-only by concurrent requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from covidtracer import aws
from covidtracer.config import SettingsError
from covidtracer.enfkeys import client_config
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.logs import get_logger

log = get_logger(__name__)

EXPOSURE = "exposure"
NOTIFICATION = "notification"
_PACKAGED = {EXPOSURE: "exposure_config.json", NOTIFICATION: "notification_settings.json"}
_RULES: dict[str, Callable[[Any], list[str]]] = {
    EXPOSURE: client_config.exposure_config_problems,
    NOTIFICATION: client_config.notification_problems,
}


@dataclass(frozen=True)
class ClientDocument:
    """A checked document: its compact JSON text (served as is) and what rules derive from it."""

    text: str
    source: str
    infectious_days: frozenset[int] = frozenset()

    def value(self) -> dict[str, Any]:
        """A fresh copy to read or return (the cached text is never handed out mutable)."""
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed


def checked(kind: str, raw: str, source: str) -> ClientDocument:
    """``raw`` as a ``ClientDocument``; ``ValueError`` listing every problem otherwise."""
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"{source}: not JSON ({error})") from error
    problems = _RULES[kind](value)
    if problems:
        raise ValueError(f"{source}: {'; '.join(problems)}")
    days = client_config.infectious_days(value) if kind == EXPOSURE else frozenset()
    return ClientDocument(json.dumps(value, separators=(",", ":")), source, days)


@cache
def packaged(kind: str) -> str:
    return resources.files("covidtracer.enfkeys").joinpath(_PACKAGED[kind]).read_text("utf-8")


def read_parameter(name: str) -> str | None:
    """The parameter's value, ``None`` when it does not exist; other failures raise."""
    client = aws.client("ssm")
    try:
        found = client.get_parameter(Name=name)
    except client.exceptions.ParameterNotFound:
        return None
    return str(found["Parameter"]["Value"])


class ClientDocuments:
    """The stage's two documents, each re-read from its parameter at most every ``ttl``."""

    def __init__(
        self,
        parameters: dict[str, str | None],
        defaults: dict[str, ClientDocument],
        ttl_seconds: float,
        *,
        read: Callable[[str], str | None] = read_parameter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parameters = parameters
        self._defaults = defaults
        self._ttl = ttl_seconds
        self._read = read
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[ClientDocument, float]] = {}

    def exposure(self) -> ClientDocument:
        return self.current(EXPOSURE)

    def notification(self) -> ClientDocument:
        return self.current(NOTIFICATION)

    def current(self, kind: str) -> ClientDocument:
        now = self._clock()
        with self._lock:
            found = self._cached.get(kind)
            if found is not None and now < found[1]:
                return found[0]
            last_good = found[0] if found else self._defaults[kind]
        document = self._refresh(kind, last_good)
        with self._lock:
            self._cached[kind] = (document, now + self._ttl)
        return document

    def _refresh(self, kind: str, last_good: ClientDocument) -> ClientDocument:
        name = self._parameters.get(kind)
        if not name:
            return self._defaults[kind]
        try:
            raw = self._read(name)
        except Exception as error:  # botocore's errors: Parameter Store is down or refuses
            log.warning(
                "client document unreadable: serving the last good one",
                extra={"document": kind, "error": type(error).__name__},
            )
            return last_good
        if raw is None:
            return self._defaults[kind]
        try:
            return checked(kind, raw, f"parameter {name}")
        except ValueError as error:
            log.error(
                "client document refused: serving the last good one",
                extra={"document": kind, "problems": str(error)},
            )
            return last_good


def for_settings(settings: EnfSettings) -> ClientDocuments:
    """The stage's documents: its parameters, and its defaults checked now (a stage whose
    default a phone would refuse does not start: ``SettingsError``)."""
    defaults: dict[str, ClientDocument] = {}
    problems: list[str] = []
    stage_documents = {
        EXPOSURE: ("ENF_EXPOSURE_CONFIG", settings.exposure_config_json),
        NOTIFICATION: ("ENF_NOTIFICATION_CONFIG", settings.notification_config_json),
    }
    for kind, (variable, raw) in stage_documents.items():
        source = variable if raw else f"packaged {_PACKAGED[kind]}"
        try:
            defaults[kind] = checked(kind, raw or packaged(kind), source)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise SettingsError("enf", problems)
    parameters = {
        EXPOSURE: settings.client_config.exposure_parameter,
        NOTIFICATION: settings.client_config.notification_parameter,
    }
    return ClientDocuments(parameters, defaults, settings.client_config.cache_seconds)
