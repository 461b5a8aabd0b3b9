"""Schema-based fuzzing of an API over real HTTP (schemathesis + hypothesis), for tests.

``fuzz`` sends a bounded, derandomised number of generated requests per operation and mode
(valid and invalid inputs) and returns the status of each and the ones answered 5xx.
"""

from __future__ import annotations

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
