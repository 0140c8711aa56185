"""Run one step on many nodes at once, keeping track of which succeeded.

Per-node steps that the kernel lets run concurrently (container creation, joins, mounts,
workloads) run in threads. Every item is attempted; the caller gets the successes (to
register their undo) and one error naming every failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from attrs import frozen

from ocfs2lab.errors import LifecycleError, Ocfs2LabError

T = TypeVar("T")
R = TypeVar("R")


@frozen
class Outcome(Generic[T, R]):
    """What happened to each item."""

    done: tuple[tuple[T, R], ...]
    failed: tuple[tuple[T, BaseException], ...]

    def raise_failures(self, what: str, name: Callable[[T], str] = str) -> None:
        """Raise one error naming every failed item.

        Raises:
            LifecycleError: At least one item failed (the first error is the cause).
        """
        if not self.failed:
            return
        parts = "; ".join(f"{name(item)}: {err}" for item, err in self.failed)
        first = self.failed[0][1]
        hint = first.hint if isinstance(first, Ocfs2LabError) else None
        raise LifecycleError(
            f"{what} failed on {len(self.failed)} of {len(self.failed) + len(self.done)}: {parts}",
            step=what,
            errors=[e for _, e in self.failed],
            hint=hint,
        ) from first


def run_parallel(items: Sequence[T], fn: Callable[[T], R], *, limit: int = 16) -> Outcome[T, R]:
    """Call ``fn`` on every item concurrently and wait for all of them."""
    if len(items) <= 1:
        done: list[tuple[T, R]] = []
        failed: list[tuple[T, BaseException]] = []
        for item in items:
            try:
                done.append((item, fn(item)))
            except Exception as err:
                failed.append((item, err))
        return Outcome(tuple(done), tuple(failed))
    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        futures = [(item, pool.submit(fn, item)) for item in items]
    done, failed = [], []
    for item, fut in futures:
        problem = fut.exception()
        if problem is None:
            done.append((item, fut.result()))
        else:
            failed.append((item, problem))
    return Outcome(tuple(done), tuple(failed))
