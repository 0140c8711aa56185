"""Run git in a test's own repository, as a researcher with a name and an address."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Researcher",
    "GIT_AUTHOR_EMAIL": "r@example.invalid",
    "GIT_COMMITTER_NAME": "Researcher",
    "GIT_COMMITTER_EMAIL": "r@example.invalid",
}


def git(tree: Path, *args: str) -> str:
    """``git -C tree args...``; its standard output (raises when git fails)."""
    return subprocess.run(
        ["git", "-C", str(tree), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
    ).stdout
