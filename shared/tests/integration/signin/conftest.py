"""The sign-in adapters ship in the details service (the triggers' in auth, which the local
Cognito driver runs as the auth role): their tests sign as the details execution role."""

from __future__ import annotations

import pytest


@pytest.fixture
def aws_role() -> str:
    return "details"
