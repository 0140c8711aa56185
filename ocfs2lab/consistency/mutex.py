"""Mutual exclusion: a shared counter incremented under a lock by every node.

Each ``incr`` takes the lock (``flock`` or ``fcntl``), reads the counter file, writes the
value plus one, fsyncs, and lets go; its value is ``[read, wrote]``. A final ``read`` gives
the counter's last value. The check needs no clock:

* two increments that read the same value were inside the lock at the same time (each
  read before the other wrote): an **overlap**, shown as the pair with their nodes and host
  times;
* the final value must lie between the acknowledged increments and those plus the ones
  whose outcome is unknown: fewer is a **lost update**, more a count from nowhere.

On the o2cb stack fcntl locks are node-local (ocfs2(7)): two nodes hold "the" lock at once,
and this checker reports it. flock is cluster-wide on both stacks.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocfs2lab.consistency.history import Anomaly, CheckResult, History, Op, Outcome, check_per_key

__all__ = ["check_mutex", "overlaps"]


def _read_of(op: Op) -> int | None:
    value = op.value
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], int):
        return value[0]
    return None


def overlaps(ops: Sequence[Op]) -> list[tuple[Op, Op]]:
    """Pairs of acknowledged increments that read the same counter value."""
    by_read: dict[int, list[Op]] = {}
    for op in ops:
        if op.f == "incr" and op.ok and (seen := _read_of(op)) is not None:
            by_read.setdefault(seen, []).append(op)
    pairs: list[tuple[Op, Op]] = []
    for group in by_read.values():
        pairs.extend((group[0], other) for other in group[1:])
    return pairs


def _check_key(key: str, ops: Sequence[Op]) -> list[Anomaly]:
    found: list[Anomaly] = []
    for a, b in overlaps(ops):
        found.append(
            Anomaly(
                "overlap",
                key,
                (a.index, b.index),
                f"both read {_read_of(a)} inside the lock: {a.describe()} and {b.describe()}",
            )
        )
    incrs = [op for op in ops if op.f == "incr"]
    acked = sum(1 for op in incrs if op.ok)
    maybe = sum(1 for op in incrs if op.outcome is not Outcome.OK)
    reads = [op for op in ops if op.f == "read" and op.ok]
    if reads:
        final = max(reads, key=lambda op: op.returned_at)
        value = final.value if isinstance(final.value, int) else 0
        if value < acked:
            found.append(
                Anomaly(
                    "lost-update",
                    key,
                    (final.index,),
                    f"the counter ends at {value}, but {acked} increments were acknowledged "
                    f"({acked - value} lost): {final.describe()}",
                )
            )
        elif value > acked + maybe:
            found.append(
                Anomaly(
                    "count-from-nowhere",
                    key,
                    (final.index,),
                    f"the counter ends at {value}, above the {acked} acknowledged and {maybe} "
                    f"unknown increments: {final.describe()}",
                )
            )
    return found


def check_mutex(history: History) -> CheckResult:
    """Check every key's ``incr``/``read`` operations as a counter under a lock.

    Returns:
        Valid when no key shows an overlap, a lost update or a count from nowhere.
    """
    return check_per_key("mutex", history, ("incr", "read"), _check_key)
