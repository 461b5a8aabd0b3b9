"""The exposures adapters ship in the details service: their tests sign as its execution role."""

from __future__ import annotations

import pytest


@pytest.fixture
def aws_role() -> str:
    return "details"
