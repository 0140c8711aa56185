"""Old import paths that keep working for this release, with a deprecation warning.

A module whose names moved defines ``__getattr__ = moved(__name__, {name: "new.module"})``:
reading one of those names imports it from its new home and warns once per name.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def moved(old: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds each of ``names`` in its new module.

    Args:
        old: The old module's name (``__name__``).
        names: ``{name: new module}``.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 (a module's __getattr__)
        new = names.get(name)
        if new is None:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    return __getattr__
