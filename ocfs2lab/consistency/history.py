"""A history of operations on a shared file system, as a Jepsen-style checker reads it.

Every operation a workload ran is one [`Op`][ocfs2lab.consistency.history.Op]: which node and
which process ran it, what it was (``write``, ``read``, ``append``, ``incr``), on which key
(one file), its argument or result, and two times on the host's clock: when the host sent
it (``invoke``) and when the answer arrived (``complete``). Both stamps are taken on the host
on either side of the real operation, so the interval always contains it: a checker that
finds no linearization within these intervals has found a real anomaly.

An operation's ``outcome`` is ``ok`` (it happened and returned), ``fail`` (it returned an
error; a failed write may still have taken effect, so checkers treat it as unknown) or
``unknown`` (no answer: the node died or the link was cut). A process whose operation is
unknown is not used again: the next operation on that node is another process, as in
Jepsen.

A checker returns a [`CheckResult`][ocfs2lab.consistency.history.CheckResult]: valid, invalid,
or unknown (the search ran out of its budget), with the anomalies it found, each naming the
operations involved.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import field, frozen

from ocfs2lab.errors import ParseError

__all__ = [
    "Anomaly",
    "CheckResult",
    "History",
    "Op",
    "Outcome",
]


class Outcome(enum.Enum):
    """How an operation ended."""

    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


@frozen
class Op:
    """One operation of a history.

    Attributes:
        index: Its position in the history (unique).
        process: The process that ran it (``"<node>/<n>"``); a process runs one operation
            at a time.
        node: The node it ran on.
        f: ``"write"``, ``"read"``, ``"append"`` or ``"incr"`` (or a workload's own).
        key: The key (one file) it touched.
        value: The argument (``write``, ``append``) or the result (``read``: the value read;
            ``incr``: ``[read, wrote]``).
        invoke: Host time when it was sent.
        complete: Host time its answer arrived; ``None`` when it never did.
        outcome: ``ok``, ``fail`` or ``unknown``.
        error: The error text of a failed operation.
    """

    index: int
    process: str
    node: str
    f: str
    key: str
    value: Any
    invoke: float
    complete: float | None = None
    outcome: Outcome = field(default=Outcome.OK, converter=Outcome)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """It happened and returned."""
        return self.outcome is Outcome.OK

    @property
    def returned_at(self) -> float:
        """When it is known to have taken effect, at the latest: ``complete`` for an ``ok``
        operation, infinity otherwise (it may take effect any time after it was sent, or
        never)."""
        if self.outcome is Outcome.OK and self.complete is not None:
            return self.complete
        return math.inf

    def describe(self) -> str:
        """One line for reports: ``#12 node-2 read r3 -> 5 [10.200, 10.450]``."""
        arrow = "->" if self.f in ("read", "incr") else ""
        end = "?" if self.complete is None else f"{self.complete:.3f}"
        what = f"{self.f} {self.key} {arrow} {json.dumps(self.value)}".replace("  ", " ")
        tail = "" if self.outcome is Outcome.OK else f" ({self.outcome.value}"
        tail += f": {self.error})" if self.error else (")" if tail else "")
        return f"#{self.index} {self.node} {what} [{self.invoke:.3f}, {end}]{tail}"

    def to_json(self) -> dict[str, Any]:
        """A JSON object (the history's line format)."""
        return {
            "index": self.index,
            "process": self.process,
            "node": self.node,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "invoke": self.invoke,
            "complete": self.complete,
            "outcome": self.outcome.value,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Op:
        """The inverse of [`to_json`][ocfs2lab.consistency.history.Op.to_json].

        Raises:
            ParseError: A field is missing or of the wrong type.
        """
        try:
            complete = data.get("complete")
            return cls(
                index=int(data["index"]),
                process=str(data["process"]),
                node=str(data["node"]),
                f=str(data["f"]),
                key=str(data["key"]),
                value=data.get("value"),
                invoke=float(data["invoke"]),
                complete=None if complete is None else float(complete),
                outcome=Outcome(data.get("outcome", "ok")),
                error=data.get("error"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ParseError("a history operation", str(err), text=json.dumps(data)) from err


class History(Sequence[Op]):
    """The operations of one run, in the order they were invoked.

    Args:
        ops: The operations; their indexes must be unique.

    Raises:
        ParseError: Two operations share an index, or one completes before it was invoked.
    """

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self._ops = sorted(ops, key=lambda op: (op.invoke, op.index))
        seen: set[int] = set()
        for op in self._ops:
            if op.index in seen:
                raise ParseError(
                    "a history", f"two operations have the index {op.index}", text=op.describe()
                )
            seen.add(op.index)
            if op.complete is not None and op.complete < op.invoke:
                raise ParseError(
                    "a history", "an operation completes before it is invoked", text=op.describe()
                )

    def __getitem__(self, i: int) -> Op:  # type: ignore[override]
        return self._ops[i]

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __repr__(self) -> str:
        return f"History({len(self._ops)} ops, keys={sorted(self.keys())})"

    def keys(self) -> set[str]:
        """The keys touched."""
        return {op.key for op in self._ops}

    def of(self, *, key: str | None = None, f: str | None = None) -> list[Op]:
        """The operations on ``key`` and/or of kind ``f``."""
        return [
            op for op in self._ops if (key is None or op.key == key) and (f is None or op.f == f)
        ]

    def by_key(self) -> dict[str, list[Op]]:
        """The operations grouped by key (each group in invoke order)."""
        out: dict[str, list[Op]] = {}
        for op in self._ops:
            out.setdefault(op.key, []).append(op)
        return out

    def counts(self) -> dict[str, int]:
        """How many operations ended each way (``ok``, ``fail``, ``unknown``)."""
        out = {o.value: 0 for o in Outcome}
        for op in self._ops:
            out[op.outcome.value] += 1
        return out

    def to_jsonl(self, path: str | Path) -> Path:
        """Write one JSON object per operation."""
        target = Path(path)
        with target.open("w") as out:
            for op in self._ops:
                out.write(json.dumps(op.to_json()) + "\n")
        return target

    @classmethod
    def from_jsonl(cls, path: str | Path) -> History:
        """Read a history written by [`to_jsonl`][ocfs2lab.consistency.history.History.to_jsonl].

        Raises:
            ParseError: A line is not an operation.
        """
        ops = []
        for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                ops.append(Op.from_json(json.loads(line)))
            except json.JSONDecodeError as err:
                raise ParseError("a history", f"not JSON: {err}", line=n, text=line) from err
        return cls(ops)


@frozen
class Anomaly:
    """One thing a checker found wrong.

    Attributes:
        kind: What kind (``"not-linearizable"``, ``"lost-append"``, ``"lost-update"``, ...).
        key: The key it is on.
        ops: The operations involved (indexes into the history).
        text: What it is, in words, with the operations described.
    """

    kind: str
    key: str
    ops: tuple[int, ...]
    text: str

    def to_json(self) -> dict[str, Any]:
        """A JSON object."""
        return {"kind": self.kind, "key": self.key, "ops": list(self.ops), "text": self.text}


@frozen
class CheckResult:
    """What one checker said of a history.

    Attributes:
        checker: Its name (``"register"``, ``"append"``, ``"mutex"``).
        valid: ``True``, ``False``, or ``None`` when it could not tell (search budget spent).
        anomalies: What it found wrong (empty when valid).
        keys: Per key: ``"valid"``, ``"invalid"`` or ``"unknown"``.
        stats: Counts (operations checked, search steps, ...).
    """

    checker: str
    valid: bool | None
    anomalies: tuple[Anomaly, ...] = ()
    keys: Mapping[str, str] = field(factory=dict)
    stats: Mapping[str, int] = field(factory=dict)

    def summary(self) -> str:
        """One line: ``register: valid (12 keys, 840 ops)``."""
        verdict = {True: "valid", False: "INVALID", None: "unknown"}[self.valid]
        ops = self.stats.get("ops")
        extra = f" ({len(self.keys)} keys" + (f", {ops} ops)" if ops is not None else ")")
        found = f"; {len(self.anomalies)} anomalies" if self.anomalies else ""
        return f"{self.checker}: {verdict}{extra}{found}"

    def to_json(self) -> dict[str, Any]:
        """A JSON object."""
        return {
            "checker": self.checker,
            "valid": self.valid,
            "anomalies": [a.to_json() for a in self.anomalies],
            "keys": dict(self.keys),
            "stats": dict(self.stats),
        }


def check_per_key(
    checker: str,
    history: History,
    kinds: tuple[str, ...],
    check_key: Callable[[str, Sequence[Op]], list[Anomaly]],
) -> CheckResult:
    """Run ``check_key`` on each key whose operations include ``kinds[0]`` (the writing
    kind), over its operations of ``kinds``; a key is valid when it yields no anomaly."""
    keys: dict[str, str] = {}
    anomalies: list[Anomaly] = []
    total = 0
    groups = History(op for op in history if op.f in kinds).by_key()
    for key, ops in sorted(groups.items()):
        if not any(op.f == kinds[0] for op in ops):
            continue
        found = check_key(key, ops)
        total += len(ops)
        anomalies.extend(found)
        keys[key] = key_verdict(not found)
    valid = not anomalies
    return CheckResult(checker, valid, tuple(anomalies), keys, {"ops": total})


def combine(verdicts: Iterable[bool | None]) -> bool | None:
    """Invalid if any is, else unknown if any is, else valid."""
    seen = list(verdicts)
    if any(v is False for v in seen):
        return False
    if any(v is None for v in seen):
        return None
    return True


def key_verdict(valid: bool | None) -> str:
    """``"valid"``, ``"invalid"`` or ``"unknown"``."""
    return {True: "valid", False: "invalid", None: "unknown"}[valid]
