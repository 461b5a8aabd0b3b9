from __future__ import annotations

from pathlib import Path

import pytest

from covidtracer.migrations import MigrationError, discover


def _write(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_text("SELECT 1;")


def test_migrations_are_ordered_by_version_with_optional_downs(tmp_path: Path) -> None:
    _write(tmp_path, "0002_b.up.sql", "0001_a.up.sql", "0001_a.down.sql")
    found = discover(tmp_path)
    assert [(m.version, m.name, m.down is not None) for m in found] == [
        (1, "a", True),
        (2, "b", False),
    ]


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (("0001_a.up.sql", "0003_c.up.sql"), "without gaps"),
        (("0001_a.up.sql", "0001_b.up.sql"), "two up migrations"),
        (("0001_a.up.sql", "0002_b.down.sql"), "without an up"),
        (("1_a.up.sql",), "expected NNNN_name"),
    ],
)
def test_an_inconsistent_directory_is_refused(
    tmp_path: Path, names: tuple[str, ...], problem: str
) -> None:
    _write(tmp_path, *names)
    with pytest.raises(MigrationError, match=problem):
        discover(tmp_path)
