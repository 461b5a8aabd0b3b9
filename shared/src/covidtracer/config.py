"""The settings reader: each setting is declared once — environment name, type, default and
bounds — on the field of a frozen dataclass, and a whole tree of them is read at once.

A domain declares its knobs in its own ``settings.py``::

    @dataclass(frozen=True, kw_only=True)
    class DiarySettings:
        # Diary entries are kept 60 days (DESIGN §8).
        retention_days: int = setting("DIARY_RETENTION_DAYS", 60, minimum=1, maximum=365)

``load(DiarySettings, "details")`` reads every field (nested settings dataclasses too), runs
each class's ``check(env)`` for rules across fields or stages, and raises one
``SettingsError`` listing every problem, so an operator fixes a stage's configuration in one
pass instead of one cold start per mistake. The field's default *is* the environment default:
there is no second copy to drift.

Secrets are never settings values: a setting names the Secrets Manager secret, and the
adapter that needs it reads it at first use.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self, get_type_hints
from urllib.parse import urlparse

STAGES = ("local", "dev", "staging", "prod")
# `cd services/<name> && chalice local` serves the app against a running `make local`: the
# Chalice CLI (which marks itself with AWS_CHALICE_CLI_MODE) with no STAGE of its own takes
# every setting, and the moto credentials, from the file the local stack writes. Lambda never
# runs the CLI; the stack's own launcher hands over every setting and says so.
_STACK_FILE = "env.json"
_SETTINGS_GIVEN = "COVIDTRACER_SETTINGS_GIVEN"


def _stack_env_file() -> Path | None:
    if os.environ.get(_SETTINGS_GIVEN) or os.environ.get("STAGE"):
        return None
    if os.environ.get("AWS_CHALICE_CLI_MODE") != "true":
        return None
    cwd = Path.cwd()
    root = next(
        (f for f in (cwd, *cwd.parents) if (f / "services").is_dir() and (f / "shared").is_dir()),
        None,
    )
    local = Path(os.environ.get("COVIDTRACER_LOCAL_DIR") or (root or Path()) / ".local")
    if root is not None and cwd.is_relative_to(services := root / "services") and cwd != services:
        own = local / f"env-{cwd.relative_to(services).parts[0]}.json"
        if own.exists():
            return own
    return local / _STACK_FILE


@cache
def _apply_stack_env_file() -> str | None:
    """Fill the process environment from the local stack's file when ``chalice local`` runs
    in a service folder (what is already set wins); returns the problem if there is one."""
    path = _stack_env_file()
    if path is None:
        return None
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return (
            f"chalice local reads its settings from the local stack, but {path} does not "
            "exist: start the stack with `make local` (in the repository root) first"
        )
    except (OSError, ValueError) as exc:
        return f"chalice local cannot read the local stack's settings in {path}: {exc}"
    for name, value in values.items():
        os.environ.setdefault(name, str(value))
    return None


class SettingsError(ValueError):
    """The environment does not describe a runnable service; ``problems`` lists every reason."""

    def __init__(self, service: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{service} settings are invalid:\n{lines}")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# How a declared setting is turned from text into its value; ``None`` means "use the default".
Parser = Callable[["Env", str, Any], Any]


@dataclass(frozen=True)
class Spec:
    """What ``setting()`` records on a field."""

    name: str
    default: Any
    minimum: int | None
    maximum: int | None
    choices: tuple[str, ...] | None
    url: bool
    parse: Parser | None


def setting(
    name: str,
    default: Any = REQUIRED,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: tuple[str, ...] | None = None,
    url: bool = False,
    parse: Parser | None = None,
) -> Any:
    """A dataclass field read from environment variable ``name``.

    The field's annotation gives the type (``str``, ``int``, ``bool``, ``str | None``,
    ``tuple[str, ...]`` as a comma list); ``parse(env, name, default)`` handles anything else.
    Without ``default`` the variable is required (an empty value counts as unset).
    """
    spec = Spec(name, default, minimum, maximum, choices, url, parse)
    metadata = {"setting": spec}
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Env:
    """Typed values from an environment mapping, collecting problems instead of raising."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.problems: list[str] = []
        # At the first read, not at import: chalice local sets its stage's variables after
        # importing the app.
        if environ is None and (problem := _apply_stack_env_file()):
            self.problems.append(problem)
        self.stage = self.text("STAGE", "local")
        if self.stage not in STAGES:
            self.problems.append(f"STAGE must be one of {', '.join(STAGES)}, got {self.stage!r}")

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw(name)
        if value is not None:
            return value
        if default is None:
            self.problems.append(f"{name} is required")
            return ""
        return default

    def integer(
        self, name: str, default: int | None, minimum: int = 0, maximum: int = 2**31
    ) -> int:
        raw = self.raw(name)
        if raw is None:
            if default is None:
                self.problems.append(f"{name} is required")
                return 0
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default or 0
        if not minimum <= value <= maximum:
            self.problems.append(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = (self.raw(name) or "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def check_url(self, name: str, value: str | None) -> None:
        if value and not is_http_url(value):
            self.problems.append(f"{name} must be an http(s) URL, got {value!r}")

    def json_object(self, name: str) -> dict[str, Any] | None:
        """A JSON object, or None when unset; anything else is a problem."""
        raw = self.raw(name)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            self.problems.append(f"{name} must be a JSON object")
            return None
        return value


def log_level(env: Env, name: str, default: str) -> str:
    """A ``setting(parse=…)`` for ``LOG_LEVEL``: one of `logs.LEVELS` in any case (default
    INFO); `logs.configure` applies it."""
    from covidtracer.logs import LEVELS

    value = env.text(name, default).upper()
    if value not in LEVELS:
        env.problems.append(f"{name} must be one of {', '.join(LEVELS)}, got {value!r}")
    return value


def is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def read[T](cls: type[T], env: Env) -> T:
    """``cls`` with every declared field read from ``env`` (problems collected in it)."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec: Spec | None = field.metadata.get("setting")
        hint = hints[field.name]
        if spec is not None:
            values[field.name] = _value(env, spec, hint)
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[field.name] = read(hint, env)
        elif field.name == "stage":
            values[field.name] = env.stage
        else:
            raise TypeError(f"{cls.__name__}.{field.name} is neither a setting nor settings")
    settings = cls(**values)
    check = getattr(settings, "check", None)
    if check is not None:
        check(env)
    return settings


def load[T](cls: type[T], service: str, environ: Mapping[str, str] | None = None) -> T:
    """``cls`` read from ``environ`` (default: the process environment).

    Raises ``SettingsError`` naming every problem found.
    """
    env = Env(environ)
    settings = read(cls, env)
    if env.problems:
        raise SettingsError(service, env.problems)
    return settings


class ServiceSettings:
    """Base of a service's settings dataclass: ``from_env()`` reads it whole, reporting every
    problem under the service's name (``SERVICE``)."""

    SERVICE: ClassVar[str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        return load(cls, cls.SERVICE, environ)


def _value(env: Env, spec: Spec, hint: Any) -> Any:
    default = None if spec.default is REQUIRED else spec.default
    if spec.parse is not None:
        value = spec.parse(env, spec.name, default)
    elif hint is bool:
        value = env.flag(spec.name, bool(default))
    elif hint is int:
        value = env.integer(
            spec.name,
            default,
            0 if spec.minimum is None else spec.minimum,
            2**31 if spec.maximum is None else spec.maximum,
        )
    elif _optional_str(hint):
        value = env.raw(spec.name) if default is None else env.text(spec.name, default)
    elif hint is str:
        value = env.text(spec.name, default)
    elif hint == tuple[str, ...]:
        text = env.text(spec.name, ",".join(default) if default is not None else None)
        value = tuple(part.strip() for part in text.split(",") if part.strip())
    else:
        raise TypeError(f"{spec.name}: no reader for {hint!r}; give setting(parse=…)")
    if spec.url and isinstance(value, str):
        env.check_url(spec.name, value)
    if spec.choices is not None:
        if isinstance(value, tuple):
            if unknown := sorted(set(value) - set(spec.choices)):
                env.problems.append(f"{spec.name} has unknown {', '.join(unknown)}")
        elif value is not None and value not in spec.choices:
            env.problems.append(
                f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}"
            )
    return value


def _optional_str(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) and set(hint.__args__) == {str, type(None)}


# --------------------------------------------------------------------------- caching

_CACHES: list[Callable[[], None]] = []


def cached[T](loader: Callable[[], T]) -> Callable[[], T]:
    """Caches what ``loader`` reads or builds from settings (settings, adapters, verifiers)
    for the execution environment; ``reset()`` forgets it all at once."""
    wrapped = cache(loader)
    _CACHES.append(wrapped.cache_clear)
    return wrapped


def reset() -> None:
    """Forget settings and what was built from them (tests change the environment)."""
    for clear in _CACHES:
        clear()
