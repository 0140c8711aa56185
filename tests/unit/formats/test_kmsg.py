"""Kernel log lines -> typed events, checked on measured lines and kernel format strings."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from ocfs2lab.formats.kmsg import (
    ERROR_KINDS,
    EventKind,
    KernelEvent,
    KmsgAssembler,
    parse_kernel_line,
    parse_kernel_log,
)

from .conftest import DATA

UUID = "9F3C1B2A4D5E6F708192A3B4C5D6E7F8"
_FIELD_SPLIT = re.compile(r" (?=[a-z_.]+=)")


def _samples(path: Path) -> list[tuple[str, str, str, dict[str, str]]]:
    """``(where, line, kind, fields)`` for each ``# expect:`` + sample pair of a data file."""
    out = []
    expect: tuple[str, dict[str, str]] | None = None
    for number, line in enumerate(path.read_text().split("\n"), 1):
        if line.startswith("# expect: "):
            kind, _, rest = line[len("# expect: ") :].partition(" ")
            fields = dict(p.split("=", 1) for p in _FIELD_SPLIT.split(rest) if p)
            expect = (kind, fields)
            continue
        if line.startswith("#") or line == "":
            continue
        assert expect is not None, f"{path.name}:{number} has no '# expect:' line"
        text = line.replace("\\x1b", "\x1b").replace("\\r", "\r")
        out.append((f"{path.name}:{number}", text, expect[0], expect[1]))
        expect = None
    return out


SAMPLES = [s for f in sorted((DATA / "kernel").glob("*.txt")) for s in _samples(f)]


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_fmt(v) for v in value)
    if isinstance(value, ipaddress.IPv4Address):
        return str(value)
    return str(value)


def _get(event: KernelEvent, key: str) -> str:
    if key == "changes":
        return ";".join(f"{k}:{o}>{n}" for k, o, n in event.state_changes)
    obj: Any = event
    for part in key.split("."):
        obj = getattr(obj, part)
    return _fmt(obj)


@pytest.mark.parametrize(("where", "line", "kind", "fields"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_sample_lines(where: str, line: str, kind: str, fields: dict[str, str]) -> None:
    event = parse_kernel_line(line)
    assert event.kind is EventKind[kind], f"{where}: {event.message!r}"
    assert event.raw == line
    for key, expected in fields.items():
        assert _get(event, key) == expected, f"{where}: {key}"


def test_every_kind_has_a_sample_line() -> None:
    assert {EventKind[s[2]] for s in SAMPLES} == set(EventKind)


def test_mlog_prefix_is_split_off() -> None:
    event = parse_kernel_line(
        "[  1.0] (kworker/u4:1,59,1):o2quo_make_decision:138 ERROR: fencing this node because"
        " it is connected to a half-quorum of 1 out of 2 nodes which doesn't include the"
        " lowest active node 1"
    )
    assert event.mlog is not None
    assert (event.mlog.comm, event.mlog.pid, event.mlog.cpu) == ("kworker/u4:1", 59, 1)
    assert (event.mlog.function, event.mlog.line, event.mlog.error) == (
        "o2quo_make_decision",
        138,
        True,
    )
    assert event.message.startswith("fencing this node")


def test_comm_with_commas_and_parens() -> None:
    event = parse_kernel_line(
        "(a,(b) c,7,0):dlm_do_recovery:421 o2dlm: End recovery on domain " + UUID
    )
    assert event.mlog is not None and event.mlog.comm == "a,(b) c"
    assert event.kind is EventKind.RECOVERY_END


def test_mlog_without_comm_only_for_ocfs2_functions() -> None:
    assert parse_kernel_line("usb_probe:12 something").mlog is None
    assert parse_kernel_line("dlm_thread:12 something").mlog is not None


def test_unknown_lines_keep_their_subsystem_from_an_mlog_function() -> None:
    event = parse_kernel_line("(mount.ocfs2,812,1):ocfs2_fill_super:1011 ERROR: status = -22")
    assert event.kind is EventKind.UNKNOWN
    assert event.subsystem == "ocfs2"
    assert event.mlog is not None and event.mlog.error


def test_idle_fraction_is_milliseconds_not_a_decimal() -> None:
    line = "o2net: Connection to node b (num 2) at 10.0.0.2:7777 has been idle for 3.7 secs."
    event = parse_kernel_line(line)
    assert event.duration_ms == 3007
    assert event.seconds == pytest.approx(3.007)


def test_error_kinds() -> None:
    for kind in EventKind:
        event = KernelEvent(kind=kind, raw="", message="")
        assert event.is_error is (kind in ERROR_KINDS)
    assert EventKind.FENCE_RESTART not in ERROR_KINDS


def test_drbd_change_lookup() -> None:
    event = parse_kernel_line(
        "block drbd0: role( Secondary -> Primary ) disk( Attaching -> UpToDate ) "
    )
    assert event.change("role") == ("Secondary", "Primary")
    assert event.change("pdsk") is None


@pytest.mark.parametrize(
    "line",
    ["", " ", "\r", "\x1b[0m", "[", "[ 1.0", "<9999>", "1,2,3,-;", "(", "(a,1,2):f:3 ", "\x00"],
)
def test_odd_lines_are_unknown(line: str) -> None:
    event = parse_kernel_line(line)
    assert event.kind is EventKind.UNKNOWN
    assert event.raw == line


def test_bytes_are_decoded() -> None:
    event = parse_kernel_line(b"o2dlm: End recovery on domain X\xff")  # type: ignore[arg-type]
    assert event.kind is EventKind.RECOVERY_END
    assert event.domain == "X\ufffd"


# -- KmsgAssembler ---------------------------------------------------------------------

JOIN = f"[   70.400001] o2dlm: Node 2 joins domain {UUID} "


def test_member_list_in_separate_records() -> None:
    lines = [
        JOIN,
        "[   70.400002] ( ",
        "[   70.400003] 1 ",
        "[   70.400004] 2 ",
        "[   70.400005] ) 2 nodes",
    ]
    events = KmsgAssembler().feed_all(lines)
    assert len(events) == 1
    (event,) = events
    assert event.kind is EventKind.DLM_JOIN
    assert event.members == (1, 2)
    assert event.timestamp == pytest.approx(70.400001)
    assert event.raw.split("\n") == lines


def test_member_list_in_one_record() -> None:
    asm = KmsgAssembler()
    assert asm.feed(JOIN) == []
    assert asm.pending
    (event,) = asm.feed("[   70.400002] ( 1 2 ) 2 nodes")
    assert event.members == (1, 2)
    assert not asm.pending


def test_leave_with_members() -> None:
    events = parse_kernel_log(f"o2dlm: Node 3 leaves domain {UUID} \n( 1 2 ) 2 nodes\n")
    assert [(e.kind, e.node, e.members) for e in events] == [(EventKind.DLM_LEAVE, 3, (1, 2))]


def test_empty_member_list() -> None:
    events = parse_kernel_log(f"o2dlm: Joining domain {UUID} \n( ) 0 nodes\n")
    assert events[0].members == ()


def test_interleaved_line_is_released_after_the_join() -> None:
    other = "[   70.400002] o2net: Connected to node node3 (num 3) at 10.0.0.3:7777"
    events = KmsgAssembler().feed_all([JOIN, other, "[   70.400003] ( 1 2 3 ) 3 nodes"])
    assert [e.kind for e in events] == [EventKind.DLM_JOIN, EventKind.O2NET_CONNECTED]
    assert events[0].members == (1, 2, 3)


def test_join_without_list_is_released_by_flush() -> None:
    asm = KmsgAssembler()
    assert asm.feed(JOIN) == []
    (event,) = asm.flush()
    assert event.kind is EventKind.DLM_JOIN and event.members is None
    assert asm.flush() == []


def test_too_many_interleaved_lines_release_without_members() -> None:
    asm = KmsgAssembler(max_interleaved=2)
    out = asm.feed(JOIN) + asm.feed("a") + asm.feed("b")
    assert out == []
    out = asm.feed("c")
    assert [e.kind for e in out] == [EventKind.DLM_JOIN] + [EventKind.UNKNOWN] * 3
    assert out[0].members is None


def test_two_joins_in_a_row() -> None:
    second = f"o2dlm: Node 3 joins domain {UUID} "
    events = KmsgAssembler().feed_all([JOIN, second, "( 1 2 3 ) 3 nodes"])
    assert [(e.node, e.members) for e in events] == [(2, None), (3, (1, 2, 3))]


def test_stray_fragment_is_unknown_not_dropped() -> None:
    events = KmsgAssembler().feed_all(["( 1 2 ) 2 nodes"])
    assert [e.kind for e in events] == [EventKind.UNKNOWN]


def test_unfinished_fragments_stay_visible() -> None:
    events = KmsgAssembler().feed_all([JOIN, "( ", "1 "])
    assert [e.kind for e in events] == [EventKind.DLM_JOIN, EventKind.UNKNOWN, EventKind.UNKNOWN]
    assert events[0].members is None


def test_closing_fragment_first_releases() -> None:
    events = KmsgAssembler().feed_all([JOIN, ") 2 nodes"])
    assert [e.kind for e in events] == [EventKind.DLM_JOIN, EventKind.UNKNOWN]


def test_measured_node_death_sequence() -> None:
    text = "\n".join(line for _, line, _, _ in _samples(DATA / "kernel" / "design-measured.txt"))
    kinds = [e.kind for e in parse_kernel_log(text)][:8]
    assert kinds == [
        EventKind.O2NET_IDLE,
        EventKind.O2NET_LOST,
        EventKind.DLM_EVICTED,
        EventKind.RECOVERY_BEGIN,
        EventKind.RECOVERY_MASTER,
        EventKind.RECOVERY_END,
        EventKind.JOURNAL_REPLAY_BEGIN,
        EventKind.JOURNAL_REPLAY_END,
    ]


def test_log_skips_blank_lines_and_keeps_order() -> None:
    events = parse_kernel_log("a\n\n\r\nb\n")
    assert [e.raw for e in events] == ["a", "b"]
