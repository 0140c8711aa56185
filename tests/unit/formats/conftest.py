"""Shared helpers: where the captured test data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def data() -> Path:
    """The ``tests/data`` directory."""
    return DATA
