"""The local stand-in applies a subscription's filter pattern as CloudWatch Logs does, for the
patterns the stack uses (moto passes every event on)."""

from __future__ import annotations

import json

import pytest

from covidtracer.analytics.model import LOG_FILTER_PATTERN
from tracerstack.cloudwatch import matches

EVENT = json.dumps({"schema": 1, "name": "account_created", "counts": {"n": 2}})


@pytest.mark.parametrize(
    ("pattern", "message", "selected"),
    [
        (LOG_FILTER_PATTERN, EVENT, True),
        (LOG_FILTER_PATTERN, json.dumps({"level": "INFO", "message": "request"}), False),
        (LOG_FILTER_PATTERN, json.dumps({"schema": 2}), False),
        (LOG_FILTER_PATTERN, "START RequestId: 1 Version: 3", False),
        (LOG_FILTER_PATTERN, "[1]", False),
        ('{ $.name = "account_created" && $.counts.n = 2 }', EVENT, True),
        ('{ ($.name = "account_created") && ($.schema != 1) }', EVENT, False),
        ("{ $.name = * }", EVENT, True),
        ("{ $.missing = * }", EVENT, False),
        ("", "anything at all", True),
    ],
)
def test_a_pattern_selects_the_lines_cloudwatch_logs_would(
    pattern: str, message: str, selected: bool
) -> None:
    assert matches(pattern, message) is selected


@pytest.mark.parametrize("pattern", ["ERROR", "{ $.a = 1 || $.b = 2 }", "[ip, user]"])
def test_a_pattern_the_stand_in_cannot_read_is_refused_not_guessed(pattern: str) -> None:
    with pytest.raises(ValueError, match="not supported locally"):
        matches(pattern, EVENT)
