"""Which Cognito gateway sign-in gets is configuration (DESIGN §2.1): the production one is
built in, any other is registered by the package that brings it, so the shipped code never
names a dev-only module."""

from __future__ import annotations

import ast
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest

import covidtracer
from covidtracer import config
from covidtracer.signin import wiring

if TYPE_CHECKING:
    from covidtracer.contactdetails.settings import DetailsSettings

SHIPPED = Path(covidtracer.__file__).parent
DEV_ONLY = "tracerstack"  # the local stack's package: test oracles, fakes, local drivers


def _names_in_code(path: Path) -> list[str]:
    """Imports and string constants of a module that name the dev-only package (docstrings,
    which only explain, are left out)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules.append(getattr(node, "module", None) or "")
            found += [m for m in modules if m.split(".")[0] == DEV_ONLY]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and DEV_ONLY in node.value
        ):
            found.append(node.value)
    return found


def test_no_shipped_module_names_the_local_stack() -> None:
    named = {
        str(path.relative_to(SHIPPED)): names
        for path in sorted(SHIPPED.rglob("*.py"))
        if (names := _names_in_code(path))
    }
    assert named == {}


def test_the_local_stack_registers_its_gateway_under_the_setting_that_selects_it() -> None:
    (local,) = entry_points(group=wiring.GATEWAY_PLUGINS, name="local")
    assert local.value == "tracerstack.local_cognito:local_cognito"


def test_a_gateway_no_installed_package_provides_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    details = cast(
        "DetailsSettings", SimpleNamespace(sign_in=SimpleNamespace(cognito_gateway="local"))
    )
    monkeypatch.setattr(wiring, "GATEWAY_PLUGINS", "covidtracer.no_such_group")
    with pytest.raises(config.SettingsError, match="COGNITO_GATEWAY=local: no installed package"):
        wiring.sign_in_deps(details)
