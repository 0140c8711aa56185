"""Pass/fail criteria on an experiment's figures (pure): ``recovery_end_s > 20``.

``ocfs2lab experiment --fail-if 'recovery_end_s > 20'`` exits 1 when the median of that
figure over the runs meets the condition, so ``git bisect run`` can tell good commits from
bad ones. A criterion is ``<figure> <op> <number>`` with ``op`` one of ``< <= > >= == !=``;
several may be joined by ``or`` (any one makes the run fail).
"""

from __future__ import annotations

import math
import operator
import re
import statistics
from collections.abc import Callable, Mapping, Sequence

from attrs import frozen

from ocfs2lab.errors import SpecError

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CLAUSE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")


@frozen
class Criterion:
    """One condition on a figure's median.

    Attributes:
        figure: A figure of the runs' rows (``recovery_end_s``, ``lost_writes``, ...).
        op: The comparison.
        value: The number compared with.
    """

    figure: str
    op: str
    value: float

    def holds(self, measured: float | None) -> bool:
        """True when ``measured`` meets the condition; a figure never measured (``None``)
        meets it too: a step that did not happen is the worst outcome."""
        if measured is None:
            return True
        return _OPS[self.op](measured, self.value)

    def __str__(self) -> str:
        return f"{self.figure} {self.op} {self.value:g}"


def parse_criteria(text: str, figures: Sequence[str] | None = None) -> tuple[Criterion, ...]:
    """Parse ``'recovery_end_s > 20 or lost_writes > 0'``.

    Args:
        text: The criteria.
        figures: The known figure names (checked when given).

    Raises:
        SpecError: A clause is malformed or names an unknown figure.
    """
    clauses = [c for c in re.split(r"\s+or\s+", text.strip()) if c.strip()]
    if not clauses:
        raise SpecError("fail_if", text, "needs at least one '<figure> <op> <number>'")
    parsed = []
    for clause in clauses:
        match = _CLAUSE.match(clause)
        if match is None:
            raise SpecError(
                "fail_if",
                clause,
                "must read '<figure> <op> <number>' with op one of < <= > >= == !=",
            )
        figure, op, value = match.groups()
        if figures is not None and figure not in figures:
            raise SpecError("fail_if", figure, f"is not a figure; known: {', '.join(figures)}")
        parsed.append(Criterion(figure, op, float(value)))
    return tuple(parsed)


def medians(rows: Sequence[Mapping[str, object]]) -> dict[str, float | None]:
    """Per numeric figure of ``rows``, its median over the rows that have it."""
    names = sorted({k for row in rows for k, v in row.items() if _number(v)})
    result: dict[str, float | None] = {}
    for name in names:
        values = [float(v) for row in rows if _number(v := row.get(name))]  # type: ignore[arg-type]
        result[name] = statistics.median(values) if values else None
    return result


def _number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not math.isnan(float(value))
    )


def failing(
    criteria: Sequence[Criterion], medians: Mapping[str, float | None]
) -> list[tuple[Criterion, float | None]]:
    """The criteria that hold for ``medians`` (figure -> median over the runs)."""
    return [(c, medians.get(c.figure)) for c in criteria if c.holds(medians.get(c.figure))]


__all__ = ["Criterion", "failing", "medians", "parse_criteria"]
