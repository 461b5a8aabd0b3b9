"""Fixtures shared by the export-format tests: Google's example file and its public key."""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def google_export_zip() -> bytes:
    return (VECTORS / "google-testExport-2-records-1-of-1.zip").read_bytes()


@pytest.fixture(scope="session")
def google_public_key_pem() -> bytes:
    return (VECTORS / "google-export-public.pem").read_bytes()
