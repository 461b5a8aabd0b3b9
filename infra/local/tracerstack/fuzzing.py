"""Schema-based fuzzing of an API over real HTTP (schemathesis + hypothesis), for tests.

``fuzz`` sends a bounded, derandomised number of generated requests per operation and mode
(valid and invalid inputs) and returns the status of each and the ones answered 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any


def fuzz(
    schema_path: str,
    base_url: str,
    headers_for: Callable[[str, str], Mapping[str, str]],
    *,
    examples: int,
    skip: frozenset[tuple[str, str]] = frozenset(),
) -> tuple[list[int], list[str]]:
    """(status of every request sent, descriptions of 5xx answers) over every operation;
    ``headers_for(method, path)`` gives each operation its credentials."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_path(schema_path)
    tried: list[int] = []
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if (method, path) in skip:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            count, found = _fuzz_one(
                operation, mode, base_url, dict(headers_for(method, path)), examples
            )
            tried += count
            failures += found
    return tried, failures


def _fuzz_one(
    operation: Any, mode: Any, base_url: str, headers: dict[str, str], examples: int
) -> tuple[list[int], list[str]]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import Case, GenerationMode

    tried: list[int] = []
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=20)
        tried.append(response.status_code)
        if response.status_code >= 500:
            failures.append(
                f"{operation.method.upper()} {operation.path} {mode.value}: "
                f"{response.status_code} {case.body!r} {case.query!r} {case.path_parameters!r}"
            )

    try:
        call()
    except Unsatisfiable:
        # Nothing to get wrong (an operation without inputs): no negative case exists.
        assert mode is GenerationMode.NEGATIVE
    return tried, failures


# Values an attacker sends where a field is expected: wrong JSON types (unhashable ones
# too), numbers past every range, look-alike digits, control characters, lone surrogates,
# a huge string, deep nesting.
HOSTILE_VALUES: tuple[Any, ...] = (
    None, True, -1, 2**64, 1.5, 1e308, [], {}, [[]], {"a": {}}, [1, "x"],
    "", " ", "²", "٣٤", "１２", "+64210123456\n", "a\u0000b", "\u001b[31m", "\ud800",
    "x" * 70_000, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "'; DROP TABLE exposures; --", "../../etc/passwd",
)  # fmt: skip
DEEP = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"
# Whole bodies that are not the document a route expects.
HOSTILE_BODIES: tuple[bytes, ...] = (
    DEEP.encode(), b"[]", b"null", b"1", b'"x"', b"{", b'{"a": NaN}', b'{"a": Infinity}',
    b"\xff\xfe\x00", b'{"\\ud800": 1}', b'{"a": "\\udc00"}', b"{}" * 3, b"",
    b'{"a": 1' + b"0" * 5000 + b"}",
)  # fmt: skip
HOSTILE_QUERY: tuple[str, ...] = (
    "²", "٣", "-1", "1e9", "99999999999999999999", "%00", "%ED%A0%80", "%0A", "a" * 300, "",
)  # fmt: skip


def _mutations(baseline: Mapping[str, Any]) -> list[Any]:
    """Each field (and each field of a first list item) replaced by each hostile value or
    removed, then the hostile whole bodies."""
    bodies: list[Any] = []
    for name, value in baseline.items():
        bodies.append({k: v for k, v in baseline.items() if k != name})
        for hostile in HOSTILE_VALUES:
            bodies.append({**baseline, name: hostile})
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for inner in value[0]:
                for hostile in HOSTILE_VALUES:
                    bodies.append({**baseline, name: [{**value[0], inner: hostile}, *value[1:]]})
    return bodies


def attack(
    base_url: str,
    routes: Mapping[tuple[str, str], Mapping[str, Any]],
    headers_for: Callable[[str, str], Mapping[str, str]],
) -> tuple[list[int], list[str]]:
    """Mutational fuzzing from valid requests: ``routes`` maps (method, path) to a valid
    body (``{"query": {...}}`` for a GET's query). Also every method a path does not take.
    Returns (status of every request, descriptions of 5xx answers)."""
    import requests

    statuses: list[int] = []
    failures: list[str] = []
    session = requests.Session()

    def send(method: str, path: str, data: bytes | None, query: str = "") -> None:
        headers = {"Content-Type": "application/json", **headers_for(method, path)}
        url = f"{base_url}{path}{'?' + query if query else ''}"
        response = session.request(method, url, data=data, headers=headers, timeout=30)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            shown = (data or b"")[:120]
            failures.append(f"{method} {path}?{query[:80]} {shown!r}: {response.status_code}")

    for (method, path), baseline in routes.items():
        if method == "GET":
            for name in baseline.get("query", {}):
                for hostile in HOSTILE_QUERY:
                    send(method, path, None, f"{name}={hostile}")
            continue
        for body in _mutations(baseline):
            send(method, path, json.dumps(body).encode())
        for raw in HOSTILE_BODIES:
            send(method, path, raw)
    for path in {path for _, path in routes}:
        taken = {method for method, p in routes if p == path}
        for method in {"GET", "PUT", "POST", "PATCH", "DELETE"} - taken:
            send(method, path, b"{}")
    return statuses, failures
