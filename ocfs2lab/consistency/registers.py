"""Per-file linearizability: files written whole and read from every node, as registers.

OCFS2 promises that "a read on a node gets the last write irrespective of the IO mode used"
and that it is "fully cache coherent" (ocfs2(7)). For files written whole and read whole,
that is a register per file, linearizable across nodes: every operation takes effect at one
instant between its invoke and its completion, and every read returns the value of the last
write before it in that order.

The search is Wing and Gong's, with Lowe's memoization, as Porcupine does it: per key
(linearizability is compositional), a depth-first search over the history's call and return
events that linearizes pending calls, backtracks when a return comes before its call was
linearized, and skips states (set of linearized operations, register value) already seen.
Operations whose outcome is unknown may take effect at any time after their call, or never.
Each key has a budget of search steps; a key whose search exceeds it is reported
``unknown`` rather than letting the check hang.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from ocfs2lab.consistency.history import (
    Anomaly,
    CheckResult,
    History,
    Op,
    Outcome,
    combine,
    key_verdict,
)

__all__ = ["DEFAULT_BUDGET", "KeyCheck", "check_register_key", "check_registers"]

#: Search steps per key before the key is reported unknown.
DEFAULT_BUDGET = 2_000_000


@frozen
class KeyCheck:
    """The search's result for one key.

    Attributes:
        valid: ``True``, ``False`` or ``None`` (budget spent).
        steps: Search steps taken.
        stuck: When invalid: the operation whose return came before any placement of it
            was possible, at the deepest point the search reached.
        placed: When invalid: how many operations were linearized at that point.
        prefix: When invalid: the operations linearized at that point, in order.
    """

    valid: bool | None
    steps: int
    stuck: Op | None = None
    placed: int = 0
    prefix: tuple[Op, ...] = ()


def _usable(op: Op) -> bool:
    """Reads that did not return say nothing; everything else takes part."""
    if op.f == "read":
        return op.outcome is Outcome.OK
    return op.f == "write"


def _step(state: Any, op: Op) -> tuple[bool, Any]:
    if op.f == "write":
        return True, op.value
    return op.value == state, state


def check_register_key(
    ops: Sequence[Op], *, initial: Any = None, budget: int = DEFAULT_BUDGET
) -> KeyCheck:
    """Is one key's history of ``write``/``read`` operations linearizable?

    Args:
        ops: The key's operations (others are ignored: reads that did not return, other
            kinds).
        initial: The register's value before the first write (a missing file reads as
            ``None``).
        budget: Search steps before giving up (the result is then ``valid=None``).
    """
    chosen = [op for op in ops if _usable(op)]
    n = len(chosen)
    if n == 0:
        return KeyCheck(True, 0)
    # Events: (time, is_return, op). A call sorts before a return at the same time: equal
    # stamps count as overlapping, which only ever allows more orders (conservative).
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(chosen):
        events.append((op.invoke, 0, i))
        events.append((op.returned_at, 1, i))
    events.sort()
    # A doubly linked list over the events; node 0 is the head sentinel.
    size = len(events) + 1
    nxt = list(range(1, size + 1))
    nxt[-1] = -1
    prv = list(range(-1, size - 1))
    is_ret = [0] * size
    op_of = [0] * size
    when = [0.0] * size
    match = [0] * size  # call node -> its return node
    call_node = [0] * n
    for pos, (t, ret, i) in enumerate(events, start=1):
        is_ret[pos], op_of[pos], when[pos] = ret, i, t
        if ret:
            match[call_node[i]] = pos
        else:
            call_node[i] = pos

    def lift(c: int) -> None:
        r = match[c]
        nxt[prv[c]] = nxt[c]
        if nxt[c] != -1:
            prv[nxt[c]] = prv[c]
        nxt[prv[r]] = nxt[r]
        if nxt[r] != -1:
            prv[nxt[r]] = prv[r]

    def unlift(c: int) -> None:
        r = match[c]
        nxt[prv[r]] = r
        if nxt[r] != -1:
            prv[nxt[r]] = r
        nxt[prv[c]] = c
        if nxt[c] != -1:
            prv[nxt[c]] = c

    linearized = 0
    state = initial
    stack: list[tuple[int, Any]] = []
    seen: set[tuple[int, Any]] = set()
    steps = 0
    deepest, stuck_at = -1, -1
    best_prefix: tuple[Op, ...] = ()
    entry = nxt[0]
    while entry != -1:
        steps += 1
        if steps > budget:
            return KeyCheck(None, steps)
        if is_ret[entry]:
            if when[entry] == math.inf:
                return KeyCheck(True, steps)  # only operations that may never have happened
            if len(stack) > deepest:
                deepest, stuck_at = len(stack), op_of[entry]
                best_prefix = tuple(chosen[op_of[c]] for c, _ in stack)
            if not stack:
                break
            entry, state = stack.pop()
            linearized &= ~(1 << op_of[entry])
            unlift(entry)
            entry = nxt[entry]
            continue
        i = op_of[entry]
        ok, new_state = _step(state, chosen[i])
        if ok:
            marker = (linearized | (1 << i), _hashable(new_state))
            if marker not in seen:
                seen.add(marker)
                stack.append((entry, state))
                linearized = marker[0]
                state = new_state
                lift(entry)
                entry = nxt[0]
                continue
        entry = nxt[entry]
    if entry == -1:
        return KeyCheck(True, steps)
    stuck = chosen[stuck_at] if stuck_at >= 0 else None
    return KeyCheck(False, steps, stuck=stuck, placed=max(deepest, 0), prefix=best_prefix)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def check_registers(
    history: History, *, initial: Any = None, budget: int = DEFAULT_BUDGET
) -> CheckResult:
    """Check every key's ``write``/``read`` operations for linearizability.

    Args:
        history: The run's history (other kinds of operations are ignored).
        initial: Every register's value before its first write.
        budget: Search steps per key before the key is reported unknown.

    Returns:
        Valid when every key is; invalid with a ``not-linearizable`` anomaly per bad key,
        naming the operation that could not be placed and the order found up to it.
    """
    keys: dict[str, str] = {}
    anomalies: list[Anomaly] = []
    steps = ops = 0
    verdicts: list[bool | None] = []
    groups = History(o for o in history if o.f in ("write", "read")).by_key()
    for key, group in sorted(groups.items()):
        result = check_register_key(group, initial=initial, budget=budget)
        steps += result.steps
        ops += len(group)
        verdicts.append(result.valid)
        keys[key] = key_verdict(result.valid)
        if result.valid is False and result.stuck is not None:
            tail = ", ".join(op.describe() for op in result.prefix[-4:]) or "nothing"
            anomalies.append(
                Anomaly(
                    "not-linearizable",
                    key,
                    (result.stuck.index, *(op.index for op in result.prefix[-4:])),
                    f"{key}: no order of the operations fits their times: "
                    f"{result.stuck.describe()} cannot be placed after the "
                    f"{result.placed} operations that can (the last: {tail})",
                )
            )
    return CheckResult(
        "register",
        combine(verdicts),
        tuple(anomalies),
        keys,
        {"ops": ops, "steps": steps},
    )
