"""The release version of this checkout, as packages, stacks and ``GET /health`` carry it."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from tracerstack import REPO_ROOT


@functools.cache
def release_version(repo: Path = REPO_ROOT) -> str:
    """The checkout's tag, else its commit (12 hex digits), with ``-dirty`` if edited.

    Two clones of one commit give the same version, so they package identical templates.
    """
    result = subprocess.run(
        ["git", "describe", "--tags", "--always", "--abbrev=12", "--dirty"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else "unversioned"
