"""SerialConsole: lines split across reads, stamped on arrival, logged and parsed back."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ocfs2lab.errors import ParseError, WaitTimeout
from ocfs2lab.vm.console import (
    ConsoleLine,
    SerialConsole,
    clean_text,
    find_lines,
    parse_console_log,
)


class Clock:
    """A settable clock that counts how often the reader asked it (once per read)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.calls = 0
        self.cond = threading.Condition()

    def __call__(self) -> float:
        with self.cond:
            self.calls += 1
            self.cond.notify_all()
            return self.now

    def wait_calls(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.calls >= count, timeout=5)


def make_console(tmp_path: Path, clock: Clock) -> tuple[SerialConsole, int]:
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "rb", buffering=0)
    console = SerialConsole(stream, tmp_path / "console.log", name="t", clock=clock)
    console.start()
    return console, write_fd


def test_lines_are_stamped_when_their_first_byte_arrives(tmp_path: Path) -> None:
    clock = Clock()
    console, w = make_console(tmp_path, clock)
    seen: list[ConsoleLine] = []
    console.add_listener(seen.append)
    os.write(w, b"[    1.000] first li")
    clock.wait_calls(1)  # the reader has taken the partial line
    clock.now = 1005.0
    os.write(w, b"ne\r\n[    2.000] second\n\x1b[0;32m  OK  \x1b[0m] Started\npartial")
    console.wait_for("Started", timeout=5)
    clock.now = 1010.0
    os.close(w)
    assert console.join(5)
    lines = console.lines()
    assert [line.text for line in lines] == [
        "[    1.000] first line",
        "[    2.000] second",
        "  OK  ] Started",
        "partial",
    ]
    assert lines[0].time == 1000.0  # stamped at the first byte, not at the newline
    assert lines[1].time == 1005.0
    assert lines[3].time == 1005.0  # "partial" arrived with the second chunk
    assert seen == lines
    assert console.closed
    logged = parse_console_log((tmp_path / "console.log").read_text())
    assert logged == lines
    assert console.lines(since=1005.0) == lines[1:]
    assert console.tail(2) == "  OK  ] Started\npartial"


def test_wait_for_times_out_and_ends(tmp_path: Path) -> None:
    console, w = make_console(tmp_path, Clock())
    os.write(w, b"hello\n")
    assert console.wait_for(r"hel+o", timeout=5).text == "hello"
    with pytest.raises(WaitTimeout):
        console.wait_for("never", timeout=0.2)
    os.close(w)
    with pytest.raises(WaitTimeout) as info:
        console.wait_for("never", timeout=30)
    assert "console ended" in str(info.value)
    assert console.close(5)


def test_listener_errors_do_not_stop_reading(tmp_path: Path) -> None:
    console, w = make_console(tmp_path, Clock())

    def bad(_line: ConsoleLine) -> None:
        raise RuntimeError("boom")

    console.add_listener(bad)
    os.write(w, b"a\nb\n")
    os.close(w)
    assert console.join(5)
    assert [line.text for line in console.lines()] == ["a", "b"]


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    console, w = make_console(tmp_path, Clock())
    os.write(w, b"bad \xff byte\n")
    os.close(w)
    assert console.join(5)
    assert console.lines()[0].text == "bad \ufffd byte"


def test_clean_text_and_find() -> None:
    assert clean_text("\x1b[0;1;39mWelcome\x1b[0m\x07!") == "Welcome!"
    # systemd's terminal reset before its first kernel line: OSC 104 and CSI sequences.
    raw = "\x1b[!p\x1b]104\x07\x1b[?7h[    8.42] systemd[1]: systemd 257"
    assert clean_text(raw) == "[    8.42] systemd[1]: systemd 257"
    lines = [ConsoleLine(1.0, "o2net: connected"), ConsoleLine(2.0, "other")]
    assert find_lines(lines, "^o2net") == lines[:1]


def test_parse_console_log_rejects_garbage() -> None:
    assert parse_console_log("1.5 a b\n\n2.25 \n") == [
        ConsoleLine(1.5, "a b"),
        ConsoleLine(2.25, ""),
    ]
    with pytest.raises(ParseError):
        parse_console_log("no stamp here\n")
