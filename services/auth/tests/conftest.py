"""Tests of this service import its ``app`` module from the service folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture
def aws_role() -> str:
    """This service's tests sign as its execution role (``tracerstack.iam``)."""
    return "auth"
