"""The checkers on synthetic histories: each catches a planted anomaly of its kind and
passes valid histories; hypothesis generates valid histories from a sequential model (a
real order of operations, each stretched to an interval that contains its instant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocfs2lab.consistency import (
    History,
    Op,
    Outcome,
    check_appends,
    check_mutex,
    check_registers,
)
from ocfs2lab.consistency.registers import check_register_key
from ocfs2lab.errors import ParseError


class Ops:
    """Builds operations with running indexes."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def __call__(
        self,
        node: str,
        f: str,
        key: str,
        value: Any,
        invoke: float,
        complete: float | None,
        outcome: str = "ok",
    ) -> Op:
        op = Op(len(self.ops), f"{node}/0", node, f, key, value, invoke, complete, outcome)
        self.ops.append(op)
        return op

    def history(self) -> History:
        return History(self.ops)


# -- registers ---------------------------------------------------------------------------


def test_a_read_of_the_last_write_is_linearizable() -> None:
    op = Ops()
    op("n1", "write", "r", 1, 0.0, 1.0)
    op("n2", "read", "r", 1, 1.5, 2.0)
    op("n2", "write", "r", 2, 2.5, 3.0)
    op("n3", "read", "r", 2, 3.5, 4.0)
    result = check_registers(op.history())
    assert result.valid is True and result.keys == {"r": "valid"}


def test_overlapping_writes_allow_either_read() -> None:
    op = Ops()
    op("n1", "write", "r", 1, 0.0, 2.0)
    op("n2", "write", "r", 2, 0.5, 2.5)
    op("n3", "read", "r", 1, 3.0, 3.5)  # write 2 then write 1
    assert check_registers(op.history()).valid is True


def test_a_stale_read_is_found_and_shown() -> None:
    """Node 3 reads the old value after the new write completed: OCFS2 would have broken
    its coherence promise."""
    op = Ops()
    op("n1", "write", "r", 1, 0.0, 1.0)
    op("n2", "write", "r", 2, 2.0, 3.0)
    stale = op("n3", "read", "r", 1, 4.0, 5.0)
    result = check_registers(op.history())
    assert result.valid is False and result.keys == {"r": "invalid"}
    (anomaly,) = result.anomalies
    assert anomaly.kind == "not-linearizable" and anomaly.ops[0] == stale.index
    assert "#2 n3 read r -> 1" in anomaly.text


def test_a_value_never_written_is_not_linearizable() -> None:
    op = Ops()
    op("n1", "write", "r", 1, 0.0, 1.0)
    op("n2", "read", "r", 7, 2.0, 3.0)
    assert check_registers(op.history()).valid is False


def test_an_unknown_write_may_have_happened_or_not() -> None:
    """A write whose node died may show later, or never."""
    for seen in (1, 2):
        op = Ops()
        op("n1", "write", "r", 1, 0.0, 1.0)
        op("n2", "write", "r", 2, 1.5, None, "unknown")
        op("n3", "read", "r", seen, 5.0, 6.0)
        assert check_registers(op.history()).valid is True, seen


def test_an_unknown_write_cannot_act_before_it_was_sent() -> None:
    op = Ops()
    op("n1", "write", "r", 1, 0.0, 1.0)
    op("n3", "read", "r", 2, 2.0, 3.0)
    op("n2", "write", "r", 2, 4.0, None, "unknown")
    assert check_registers(op.history()).valid is False


def test_a_spent_budget_says_unknown_rather_than_hang() -> None:
    op = Ops()
    for n in range(12):  # all concurrent: many orders to try
        op(f"n{n}", "write", "r", n, 0.0, 10.0)
    op("x", "read", "r", 99, 11.0, 12.0)
    result = check_registers(op.history(), budget=50)
    assert result.valid is None and result.keys == {"r": "unknown"}
    assert check_register_key(op.ops, budget=50).steps > 50


def _sequential_register(draw: st.DrawFn, key: str, nodes: int, start_index: int) -> list[Op]:
    """A real sequential execution: instants in order, each op's interval around its
    instant, reads returning the value current at their instant."""
    count = draw(st.integers(1, 25))
    value: int | None = None
    ops = []
    v: int | None
    t = 0.0
    for n in range(count):
        t += draw(st.floats(0.01, 1.0))
        before = draw(st.floats(0.0, 2.0))
        after = draw(st.floats(0.0, 2.0))
        node = f"n{draw(st.integers(1, nodes))}"
        if draw(st.booleans()):
            value = start_index + n
            f, v = "write", value
        else:
            f, v = "read", value
        ops.append(Op(start_index + n, f"{node}/0", node, f, key, v, t - before, t + after))
    return ops


@st.composite
def register_histories(draw: st.DrawFn) -> list[Op]:
    ops: list[Op] = []
    for key in ("a", "b", "c")[: draw(st.integers(1, 3))]:
        ops.extend(_sequential_register(draw, key, 3, len(ops) * 10 + 1000 * len(key)))
    return ops


@settings(max_examples=150, deadline=None)
@given(register_histories())
def test_histories_of_a_sequential_register_are_linearizable(ops: list[Op]) -> None:
    assert check_registers(History(ops)).valid is True


@settings(max_examples=100, deadline=None)
@given(register_histories(), st.data())
def test_a_planted_impossible_read_is_always_caught(ops: list[Op], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(ops) - 1))
    planted = Op(-1, "z/0", "z", "read", ops[k].key, -12345, ops[k].invoke, ops[k].invoke + 0.1)
    result = check_registers(History([*ops, planted]))
    assert result.valid is False
    assert result.anomalies[0].key == ops[k].key


# -- append logs -------------------------------------------------------------------------


def _appends(op: Ops) -> None:
    op("n1", "append", "log", "n1-0", 0.0, 1.0)
    op("n2", "append", "log", "n2-0", 0.5, 1.5)  # overlaps n1-0: either order
    op("n3", "read", "log", ["n2-0", "n1-0"], 2.0, 2.5)
    op("n1", "append", "log", "n1-1", 3.0, 4.0)


def test_a_growing_log_is_valid() -> None:
    op = Ops()
    _appends(op)
    op("n2", "read", "log", {"values": ["n2-0", "n1-0", "n1-1"], "torn": []}, 5.0, 6.0)
    result = check_appends(op.history())
    assert result.valid is True, result.anomalies


@pytest.mark.parametrize(
    ("final", "kind"),
    [
        (["n2-0", "n1-0"], "lost-append"),
        (["n1-0", "n2-0", "n1-1"], "not-a-prefix"),
        (["n2-0", "n1-0", "n1-1", "n1-1"], "duplicate"),
        (["n2-0", "n1-0", "n1-1", "zz"], "never-appended"),
        ({"values": ["n2-0", "n1-0", "n1-1"], "torn": ["n3-0:bad"]}, "torn-record"),
    ],
)
def test_each_append_anomaly_is_caught(final: Any, kind: str) -> None:
    op = Ops()
    _appends(op)
    op("n2", "read", "log", final, 5.0, 6.0)
    result = check_appends(op.history())
    assert result.valid is False
    assert kind in {a.kind for a in result.anomalies}, result.anomalies


def test_an_append_read_before_one_that_completed_earlier_is_out_of_order() -> None:
    op = Ops()
    op("n1", "append", "log", "a", 0.0, 1.0)
    op("n2", "append", "log", "b", 2.0, 3.0)
    op("n3", "read", "log", ["b", "a"], 4.0, 5.0)
    result = check_appends(op.history())
    assert [a.kind for a in result.anomalies] == ["out-of-order"]


def test_an_unacknowledged_append_may_be_missing() -> None:
    op = Ops()
    op("n1", "append", "log", "a", 0.0, 1.0)
    op("n2", "append", "log", "b", 2.0, None, "unknown")
    op("n3", "read", "log", ["a"], 4.0, 5.0)
    assert check_appends(op.history()).valid is True


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=40))
def test_histories_of_a_sequential_log_are_valid(steps: list[tuple[int, bool]]) -> None:
    op = Ops()
    log: list[str] = []
    for n, (node, is_read) in enumerate(steps):
        t = float(n)
        if is_read:
            op(f"n{node}", "read", "log", list(log), t - 0.4, t + 0.4)
        else:
            log.append(f"n{node}-{n}")
            op(f"n{node}", "append", "log", log[-1], t - 0.4, t + 0.4)
    op("n1", "read", "log", list(log), len(steps) + 1.0, len(steps) + 2.0)
    assert check_appends(op.history()).valid is True


# -- mutual exclusion --------------------------------------------------------------------


def test_increments_under_a_working_lock_are_valid() -> None:
    op = Ops()
    for n in range(6):
        op(f"n{n % 3 + 1}", "incr", "counter", [n, n + 1], float(n), n + 0.5)
    op("n1", "read", "counter", 6, 10.0, 11.0)
    assert check_mutex(op.history()).valid is True


def test_overlapping_critical_sections_are_shown() -> None:
    """Two nodes inside a node-local lock at once: both read 2, both wrote 3."""
    op = Ops()
    op("n1", "incr", "counter", [0, 1], 0.0, 0.5)
    op("n2", "incr", "counter", [1, 2], 1.0, 1.5)
    a = op("n1", "incr", "counter", [2, 3], 2.0, 2.6)
    b = op("n2", "incr", "counter", [2, 3], 2.1, 2.7)
    op("n3", "read", "counter", 3, 5.0, 6.0)
    result = check_mutex(op.history())
    assert result.valid is False
    kinds = {x.kind: x for x in result.anomalies}
    assert set(kinds) == {"overlap", "lost-update"}
    assert kinds["overlap"].ops == (a.index, b.index)
    assert "both read 2 inside the lock" in kinds["overlap"].text
    assert "4 increments were acknowledged (1 lost)" in kinds["lost-update"].text


def test_an_unknown_increment_may_count_or_not() -> None:
    for final in (2, 3):
        op = Ops()
        op("n1", "incr", "c", [0, 1], 0.0, 0.5)
        op("n2", "incr", "c", [1, 2], 1.0, 1.5)
        op("n3", "incr", "c", None, 2.0, None, "unknown")
        op("n1", "read", "c", final, 5.0, 6.0)
        assert check_mutex(op.history()).valid is True
    op.ops[-1] = Op(3, "n1/0", "n1", "read", "c", 4, 5.0, 6.0)
    assert [a.kind for a in check_mutex(op.history()).anomalies] == ["count-from-nowhere"]


# -- the history itself ------------------------------------------------------------------


def test_a_history_round_trips_through_json_lines(tmp_path: Path) -> None:
    op = Ops()
    _appends(op)
    op("n2", "write", "r", {"v": 1}, 7.0, None, "unknown")
    history = op.history()
    back = History.from_jsonl(history.to_jsonl(tmp_path / "h.jsonl"))
    assert list(back) == list(history)
    assert back.counts() == {"ok": 4, "fail": 0, "unknown": 1}
    assert back[4].outcome is Outcome.UNKNOWN


def test_a_bad_history_is_refused() -> None:
    with pytest.raises(ParseError, match="completes before it is invoked"):
        History([Op(0, "n/0", "n", "read", "r", 1, 2.0, 1.0)])
    with pytest.raises(ParseError, match="two operations have the index 0"):
        History([Op(0, "n/0", "n", "read", "r", 1, 1.0, 2.0)] * 2)
    with pytest.raises(ParseError, match="history operation"):
        Op.from_json({"index": 1})
