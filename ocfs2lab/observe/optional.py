"""The optional ``notebook`` extra: pandas and matplotlib, imported only when used.

Functions that need pandas or matplotlib (DataFrames, plots) import them through
[`require_module`][ocfs2lab.observe.optional.require_module] inside the function; without them
they raise [`MissingDependency`][ocfs2lab.observe.optional.MissingDependency], which says how to
install them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ocfs2lab.errors import Ocfs2LabError

__all__ = ["MissingDependency", "require_module"]


class MissingDependency(Ocfs2LabError, ImportError):
    """An optional package (pandas, matplotlib) is needed and not installed.

    Attributes:
        package: The missing package.
        extra: The ocfs2lab extra that installs it.
    """

    def __init__(self, package: str, extra: str, what: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{what} needs {package}, which is not installed",
            hint=f"pip install 'ocfs2lab[{extra}]' (or pip install {package})",
        )


def require_module(module: str, package: str, what: str) -> Any:
    """Import ``module`` of the ``notebook`` extra, or say how to install it.

    Raises:
        MissingDependency: It is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(package, "notebook", what) from exc
