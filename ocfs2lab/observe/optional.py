"""The optional ``notebook`` extra: pandas and matplotlib, imported only when used.

Functions that need pandas or matplotlib (DataFrames, plots) import them through
[`require_module`][ocfs2lab.observe.optional.require_module] inside the function; without them
they raise [`MissingDependency`][ocfs2lab.observe.optional.MissingDependency], which says how to
install them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ocfs2lab.errors import MissingDependency

__all__ = ["MissingDependency", "require_module"]


def require_module(module: str, package: str, what: str) -> Any:
    """Import ``module`` of the ``notebook`` extra, or say how to install it.

    Raises:
        MissingDependency: It is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(package, "notebook", what) from exc
