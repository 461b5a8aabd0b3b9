"""Reads CloudFormation YAML and resolves the intrinsic functions the templates use.

Only what the bootstrap needs: ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::Join``,
``Fn::ImportValue``, ``Fn::If``/``Fn::Equals`` over parameters, and pseudo parameters. An
unknown function is an error, so a template change the bootstrap cannot honour fails loudly
instead of creating something different from the cloud.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

_SUB = re.compile(r"\$\{([^}!]+)\}")


class TemplateError(ValueError):
    pass


# What `!Ref AWS::NoValue` resolves to: the property holding it is left out.
NO_VALUE = object()


# libyaml's parser where PyYAML was built with it (about ten times faster), else Python's.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _tag(name: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _short in ("Ref", "Condition"):
    _Loader.add_constructor(f"!{_short}", _tag(_short))
for _fn in (
    "Sub",
    "GetAtt",
    "Join",
    "ImportValue",
    "If",
    "Equals",
    "Not",
    "Select",
    "Split",
    "GetAZs",
    "And",
    "Or",
    "Base64",
    "FindInMap",
    "Cidr",
):
    _Loader.add_constructor(f"!{_fn}", _tag(f"Fn::{_fn}"))


def load(path: Path) -> dict[str, Any]:
    """The template at ``path`` (a fresh copy: callers may change it)."""
    stat = path.stat()
    return copy.deepcopy(_parsed(path.resolve(), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=64)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    # A deployment plan reads each template for every stack's parameters: parse it once.
    return parse(path.read_text(), path.name)


def parse(text: str, name: str = "the template") -> dict[str, Any]:
    """A template body, YAML (short-form functions included) or JSON, as a document."""
    document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{name} is not a CloudFormation template")
    return document


class Resolver:
    """Evaluates intrinsic functions against parameters, created resources and exports."""

    def __init__(
        self,
        parameters: Mapping[str, str],
        refs: Mapping[str, str],
        attributes: Mapping[str, Mapping[str, str]],
        exports: Mapping[str, str],
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        self.parameters = parameters
        self.refs = refs
        self.attributes = attributes
        self.exports = exports
        self.conditions = conditions or {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg)
        resolved = {k: self(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"Ref to {name}, which is neither a parameter nor a created resource")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"GetAtt {logical_id}.{attribute} is not known locally") from None

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return str(variables[name])
                if "." in name:
                    logical_id, attribute = name.split(".", 1)
                    return self._attribute(logical_id, attribute)
                return self._ref(name)

            return _SUB.sub(substitute, template)
        if key == "Fn::GetAtt":
            return self._attribute(arg[0], arg[1])
        if key == "Fn::Join":
            return str(arg[0]).join(str(self(v)) for v in arg[1])
        if key == "Fn::ImportValue":
            name = self(arg)
            if name not in self.exports:
                raise TemplateError(f"ImportValue {name}: no stack exports it")
            return self.exports[name]
        if key == "Fn::Equals":
            return self(arg[0]) == self(arg[1])
        if key == "Fn::Not":
            return not self(arg[0])
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::If":
            return self(arg[1]) if self.condition(arg[0]) else self(arg[2])
        raise TemplateError(f"{key} is not supported by the local bootstrap")

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self(self.conditions[name]))
