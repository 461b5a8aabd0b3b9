"""IAM's evaluation of identity-based policies, for the requests the services make.

What AWS documents, and what the local gate therefore enforces:

- Policy evaluation logic: an explicit ``Deny`` wins, then any ``Allow``, else the request is
  implicitly denied (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
- ``Action``/``NotAction``: ``service:Name`` with ``*`` and ``?`` wildcards, case-insensitive
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
- ``Resource``/``NotResource``: ARNs with ``*`` and ``?`` wildcards, case-sensitive; ``*``
  alone is every resource
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
- ``Condition``: every operator of a block must hold, every key of an operator, any one value
  of a key; a key missing from the request fails the condition unless the operator is
  negated, ``…IfExists`` or ``Null``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html),
  with ``ForAnyValue:``/``ForAllValues:`` for multivalued keys
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).

An operator this module does not know is an error, never a silent match: a policy the local
stack cannot judge must not pass as allowed.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ContextValue = str | Sequence[str]


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: an action on a resource, with the request's context keys
    (``ses:FromAddress``, ``cloudwatch:namespace`` …; names are case-insensitive)."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


class Decision(enum.Enum):
    ALLOW = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "implicitly denied"


class PolicyError(ValueError):
    """The policy uses an element or operator this evaluator does not implement."""


def decide(documents: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    """IAM's decision for ``request`` under the identity-based policy ``documents``."""
    allowed = False
    for document in documents:
        for statement in _statements(document):
            if not _applies(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document["Statement"]
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not _any_match(statement["Action"], request.action, ignore_case=True):
            return False
    elif _any_match(statement["NotAction"], request.action, ignore_case=True):
        return False
    if "Resource" in statement:
        if not _any_match(statement["Resource"], request.resource, ignore_case=False):
            return False
    elif _any_match(statement["NotResource"], request.resource, ignore_case=False):
        return False
    return _conditions_hold(statement.get("Condition", {}), request.context)


def _any_match(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    return any(_pattern(p, ignore_case).fullmatch(value) for p in _listed(patterns))


@functools.cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` too), ``?`` one."""
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


# ---------------------------------------------------------------------------- conditions


def _conditions_hold(block: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    keys = {name.lower(): value for name, value in context.items()}
    return all(
        _operator_holds(operator, key.lower(), _listed(expected), keys.get(key.lower()))
        for operator, tests in block.items()
        for key, expected in tests.items()
    )


def _operator_holds(
    operator: str, key: str, expected: list[str], actual: ContextValue | None
) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if name == "Null":
        return (actual is None) == (str(expected[0]).lower() == "true")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    compare, negated = _comparison(name)
    if actual is None:
        return if_exists or negated or qualifier == "ForAllValues"
    values = [actual] if isinstance(actual, str) else list(actual)

    def one(value: str) -> bool:
        matched = any(compare(str(e), value) for e in expected)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier in ("ForAnyValue", ""):
        if qualifier == "" and len(values) != 1:
            raise PolicyError(f"{operator} on multivalued {key}: use ForAnyValue/ForAllValues")
        return any(one(v) for v in values)
    raise PolicyError(f"unknown condition set operator {qualifier!r}")


def _comparison(name: str) -> tuple[Any, bool]:
    """The comparison of a condition operator and whether the operator negates it."""
    comparisons = {
        "StringEquals": lambda e, v: e == v,
        "StringEqualsIgnoreCase": lambda e, v: e.lower() == v.lower(),
        "StringLike": lambda e, v: bool(_pattern(e, False).fullmatch(v)),
        "ArnEquals": lambda e, v: bool(_pattern(e, False).fullmatch(v)),
        "ArnLike": lambda e, v: bool(_pattern(e, False).fullmatch(v)),
        "Bool": lambda e, v: e.lower() == v.lower(),
    }
    negated = {
        "StringNotEquals": "StringEquals",
        "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
        "StringNotLike": "StringLike",
        "ArnNotEquals": "ArnEquals",
        "ArnNotLike": "ArnLike",
    }
    if name in comparisons:
        return comparisons[name], False
    if name in negated:
        return comparisons[negated[name]], True
    raise PolicyError(f"condition operator {name!r} is not implemented by tracerstack.iam")
