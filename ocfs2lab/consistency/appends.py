"""Append logs: records appended by every node to shared files, read back whole.

Each ``append`` writes one self-checking record (its value and a checksum) to the end of a
file with ``O_APPEND`` and fsyncs it; each ``read`` returns the values of the file's records
in file order, and the records that failed their checksum (torn). Checked per key:

* **prefix**: a log only grows, so of two reads the one that completed first is a prefix of
  the later one, and two overlapping reads are prefixes of one another;
* **no duplicates and nothing unknown**: no value twice in a read, no value that was never
  appended;
* **nothing torn**: no record fails its checksum;
* **nothing acknowledged lost**: every append that returned ok is in the last read of its
  key (the final read after the faults are healed);
* **real-time order**: an append that completed before another was invoked comes first.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ocfs2lab.consistency.history import Anomaly, CheckResult, History, Op, Outcome, check_per_key

__all__ = ["check_appends", "read_values"]


def read_values(op: Op) -> tuple[list[Any], list[Any]]:
    """The values and the torn records of a read: its value is ``{"values": [...],
    "torn": [...]}`` (a bare list means no torn record)."""
    value = op.value
    if isinstance(value, dict):
        return list(value.get("values") or []), list(value.get("torn") or [])
    return list(value or []), []


def _is_prefix(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) <= len(b) and list(b[: len(a)]) == list(a)


def _check_key(key: str, ops: Sequence[Op]) -> list[Anomaly]:
    found: list[Anomaly] = []
    appends = [op for op in ops if op.f == "append"]
    reads = [op for op in ops if op.f == "read" and op.outcome is Outcome.OK]
    appended = {op.value: op for op in appends}
    for read in reads:
        values, torn = read_values(read)
        if torn:
            found.append(
                Anomaly("torn-record", key, (read.index,), f"{read.describe()}: torn {torn}")
            )
        dupes = sorted(repr(v) for v, n in Counter(values).items() if n > 1)
        if dupes:
            found.append(
                Anomaly("duplicate", key, (read.index,), f"{read.describe()}: twice {dupes}")
            )
        unknown = [v for v in values if v not in appended]
        if unknown:
            found.append(
                Anomaly(
                    "never-appended",
                    key,
                    (read.index,),
                    f"{read.describe()}: values no append wrote: {unknown[:5]}",
                )
            )
        # An append b read before an append a that had completed before b began: walk the
        # read in order keeping the latest-invoked append so far.
        latest: Op | None = None
        for v in values:
            a = appended.get(v)
            if a is None:
                continue
            if latest is not None and a.returned_at < latest.invoke:
                found.append(
                    Anomaly(
                        "out-of-order",
                        key,
                        (read.index, a.index, latest.index),
                        f"{read.describe()}: {latest.describe()} comes before "
                        f"{a.describe()}, which had completed before it began",
                    )
                )
                break
            if latest is None or a.invoke > latest.invoke:
                latest = a
    found.extend(_prefix_anomalies(key, reads))
    if reads:
        final = max(reads, key=lambda op: op.returned_at)
        present = set(read_values(final)[0])
        lost = [
            a for a in appends if a.ok and a.returned_at <= final.invoke and a.value not in present
        ]
        if lost:
            found.append(
                Anomaly(
                    "lost-append",
                    key,
                    (final.index, *(a.index for a in lost)),
                    f"{len(lost)} acknowledged appends missing from the final read "
                    f"{final.describe()}: " + "; ".join(a.describe() for a in lost[:5]),
                )
            )
    return found


def _prefix_anomalies(key: str, reads: Sequence[Op]) -> list[Anomaly]:
    """Reads of one log must form a chain of prefixes, and a read that began after another
    ended sees at least as much. Linear in the reads' lengths (plus sorting)."""
    found: list[Anomaly] = []
    seen = [(read, read_values(read)[0]) for read in reads]
    # A chain: sorted by length, each is a prefix of the next (then of all longer ones).
    chain = sorted(seen, key=lambda rv: (len(rv[1]), rv[0].invoke))
    for (short, a), (long, b) in itertools.pairwise(chain):
        if not _is_prefix(a, b):
            first, second = sorted((short, long), key=lambda op: op.invoke)
            found.append(
                Anomaly(
                    "not-a-prefix",
                    key,
                    (first.index, second.index),
                    f"{short.describe()} is not a prefix of {long.describe()}: "
                    "the log was rewritten between them",
                )
            )
    # Real time: the longest read that ended before each read began.
    ended = sorted(seen, key=lambda rv: rv[0].returned_at)
    longest: tuple[Op, list[object]] | None = None
    pos = 0
    for read, values in sorted(seen, key=lambda rv: rv[0].invoke):
        while pos < len(ended) and ended[pos][0].returned_at < read.invoke:
            if longest is None or len(ended[pos][1]) > len(longest[1]):
                longest = ended[pos]
            pos += 1
        if longest is not None and len(longest[1]) > len(values):
            found.append(
                Anomaly(
                    "not-a-prefix",
                    key,
                    (longest[0].index, read.index),
                    f"{longest[0].describe()} is not a prefix of the later "
                    f"{read.describe()}: the log shrank",
                )
            )
    return found


def check_appends(history: History) -> CheckResult:
    """Check every key's ``append``/``read`` operations as an append log.

    Returns:
        Valid when no key shows an anomaly; each anomaly names its operations.
    """
    return check_per_key("append", history, ("append", "read"), _check_key)
