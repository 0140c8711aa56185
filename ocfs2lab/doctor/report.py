"""What doctor reports: one [`Check`][ocfs2lab.doctor.report.Check] per piece of the machine,
gathered in a [`DoctorReport`][ocfs2lab.doctor.report.DoctorReport].

Each check has a status: ``ok``; ``warn`` (works, or is not needed by default, but worth
knowing); ``missing`` (a piece the lab needs is absent); ``error`` (present but broken, or could
not be checked). A report is ``ok`` when no check is ``missing`` or ``error``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs
from attrs import field, frozen

from ocfs2lab.errors import SpecError

__all__ = [
    "FAILING",
    "STATUSES",
    "Check",
    "DoctorReport",
    "Status",
]

Status = Literal["ok", "warn", "missing", "error"]
#: Every status, from good to bad.
STATUSES: tuple[Status, ...] = ("ok", "warn", "missing", "error")
#: Statuses that make a report (and ``ocfs2lab doctor``) fail.
FAILING: frozenset[str] = frozenset({"missing", "error"})


def _check_status(_inst: object, _attr: object, value: str) -> None:
    if value not in STATUSES:
        raise SpecError("check.status", value, f"must be one of {', '.join(STATUSES)}")


@frozen
class Check:
    """One piece doctor looked at, and what it found.

    Attributes:
        name: Short stable name (``qemu-system-x86_64``, ``kvm``, ``disk-space``, ...).
        status: ``ok``, ``warn``, ``missing`` or ``error`` (see the module's description).
        found: What was found, in words (versions, paths, sizes, error messages).
        meaning: What that means for the lab.
        fix: How to get or repair the piece (a Debian package, a pip extra, a command);
            ``None`` when there is nothing to do.

    Raises:
        SpecError: ``status`` is not one of `STATUSES`.
    """

    name: str
    status: Status = field(validator=_check_status)
    found: str
    meaning: str
    fix: str | None = None

    @property
    def failing(self) -> bool:
        """True for ``missing`` and ``error``."""
        return self.status in FAILING


def _checks(value: Iterable[Check]) -> tuple[Check, ...]:
    return tuple(value)


@frozen
class DoctorReport:
    """Every check of one [`diagnose`][ocfs2lab.doctor.diagnose] run, in a fixed order.

    Attributes:
        checks: The checks.
    """

    checks: tuple[Check, ...] = field(converter=_checks)

    @property
    def ok(self) -> bool:
        """True when no check is ``missing`` or ``error`` (warnings are fine)."""
        return not any(c.failing for c in self.checks)

    @property
    def failing(self) -> tuple[Check, ...]:
        """The checks that are ``missing`` or ``error``."""
        return tuple(c for c in self.checks if c.failing)

    def check(self, name: str) -> Check:
        """The check called ``name``.

        Raises:
            KeyError: There is no such check.
        """
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data: ``{"ok": bool, "checks": [{name, status, found,
        meaning, fix}, ...]}``."""
        return {"ok": self.ok, "checks": [attrs.asdict(c) for c in self.checks]}
