"""The package's optional extras (``notebook``, ``coverage``): are their distributions installed?"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping

from ocfs2lab.doctor.report import Check

__all__ = [
    "EXTRAS",
    "EXTRA_MEANINGS",
    "extra_check",
    "installed_versions",
]

#: Optional extras of the package and the distributions each installs (as in pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "notebook": ("pandas", "matplotlib", "ipykernel", "nbclient", "nbformat", "jupyterlab"),
    "coverage": ("gcovr",),
}
EXTRA_MEANINGS: dict[str, str] = {
    "notebook": "Timeline.to_dataframe() and plots (pandas, matplotlib), running notebooks "
    "and opening them (jupyter lab)",
    "coverage": "coverage reports of the lab kernel's gcov data (gcovr)",
}


def installed_versions(distributions: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each distribution, ``None`` when it is not installed."""
    versions: dict[str, str | None] = {}
    for dist in distributions:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def extra_check(extra: str, versions: Mapping[str, str | None]) -> Check:
    """Judge an optional extra from the versions of its distributions."""
    name = f"extra-{extra}"
    meaning = EXTRA_MEANINGS.get(extra, f"the {extra} extra")
    missing = [d for d, v in versions.items() if v is None]
    present = ", ".join(f"{d} {v}" for d, v in versions.items() if v is not None)
    if not missing:
        return Check(name, "ok", present, f"{meaning} work")
    found = f"not installed: {', '.join(missing)}" + (f"; installed: {present}" if present else "")
    return Check(
        name,
        "warn",
        found,
        f"optional: {meaning} need it; the rest of the library does not",
        f"pip install 'ocfs2lab[{extra}]'",
    )
