"""A VM's serial console, read on the host and stamped with the host clock on arrival.

The console keeps working while the guest's network is cut or its sshd is gone, so it is
the lab's record of what the guest kernel said and when. Each line is stamped with
``time.time()`` when its first byte arrives (the later timeline puts events from several
sources on that one clock), appended to an in-memory list and to a log file, one line per
console line::

    1764068071.123456 [   12.345678] o2net: Connection to node node2 ... idle for 5.2 secs.

[`parse_console_log`][ocfs2lab.vm.console.parse_console_log] reads such a file back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from attrs import frozen

from ocfs2lab.errors import ParseError, WaitTimeout
from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)

#: Escape sequences that systemd and the kernel may print: OSC (``ESC ] ... BEL``), CSI
#: (colours, cursor control) and two-byte escapes.
_ANSI = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
#: Other control characters, except tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LOG_LINE = re.compile(r"^(\d+\.\d+) (.*)$")


@frozen
class ConsoleLine:
    """One console line.

    Attributes:
        time: Host wall clock (``time.time()``) when the line's first byte arrived.
        text: The line without its line ending and without terminal escape sequences.
    """

    time: float
    text: str

    def format(self) -> str:
        """The line as written to the console log (without the newline)."""
        return f"{self.time:.6f} {self.text}"


def clean_text(raw: str) -> str:
    """Remove terminal escapes and control characters from one console line."""
    return _CONTROL.sub("", _ANSI.sub("", raw))


def parse_console_log(text: str) -> list[ConsoleLine]:
    """Read a console log written by [`SerialConsole`][ocfs2lab.vm.console.SerialConsole] back into
    lines.

    Raises:
        ParseError: A line does not start with a timestamp.
    """
    lines: list[ConsoleLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw:
            continue
        match = _LOG_LINE.match(raw)
        if match is None:
            raise ParseError(
                "console log", "a line must start with a timestamp", line=number, text=raw
            )
        lines.append(ConsoleLine(float(match.group(1)), match.group(2)))
    return lines


class SerialConsole:
    """Reads a byte stream (QEMU's serial port) in a thread and keeps its lines.

    Args:
        stream: The readable end (QEMU's stdout pipe); read until end of file.
        log_path: File the stamped lines are appended to, or ``None``.
        name: For log messages.
        clock: The clock that stamps lines (``time.time``; tests may pass their own).
    """

    def __init__(
        self,
        stream: IO[bytes],
        log_path: Path | None = None,
        *,
        name: str = "console",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._stream = stream
        self._fd = stream.fileno()
        self._clock = clock
        self._lines: list[ConsoleLine] = []
        self._cond = threading.Condition()
        self._listeners: list[Callable[[ConsoleLine], None]] = []
        self._eof = False
        self._thread = threading.Thread(target=self._read, name=f"console-{name}", daemon=True)

    # -- reading ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread."""
        self._thread.start()

    def _read(self) -> None:
        partial = bytearray()
        first_byte_at = 0.0
        logfile = self.log_path.open("a", encoding="utf-8") if self.log_path else None
        try:
            while True:
                try:
                    chunk = os.read(self._fd, 65536)
                except OSError:
                    chunk = b""
                now = self._clock()
                if not chunk:
                    break
                start = 0
                while start < len(chunk):
                    if not partial:
                        first_byte_at = now
                    end = chunk.find(b"\n", start)
                    if end < 0:
                        partial += chunk[start:]
                        break
                    partial += chunk[start:end]
                    self._emit(first_byte_at, bytes(partial), logfile)
                    partial.clear()
                    start = end + 1
            if partial:
                self._emit(first_byte_at, bytes(partial), logfile)
        finally:
            if logfile is not None:
                logfile.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _emit(self, stamp: float, raw: bytes, logfile: IO[str] | None) -> None:
        text = clean_text(raw.decode("utf-8", errors="replace").rstrip("\r"))
        line = ConsoleLine(stamp, text)
        if logfile is not None:
            logfile.write(line.format() + "\n")
            logfile.flush()
        with self._cond:
            self._lines.append(line)
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(line)
            except Exception:  # a listener's bug must not stop the console
                log.exception("%s: console listener failed", self.name)

    # -- reading what was read ----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the stream ended (QEMU exited)."""
        with self._cond:
            return self._eof

    def lines(self, since: float | None = None) -> list[ConsoleLine]:
        """A copy of the lines read so far (those stamped at or after ``since`` if given)."""
        with self._cond:
            if since is None:
                return list(self._lines)
            return [line for line in self._lines if line.time >= since]

    def tail(self, count: int = 40) -> str:
        """The last ``count`` lines as text, for error messages."""
        with self._cond:
            return "\n".join(line.text for line in self._lines[-count:])

    def add_listener(self, callback: Callable[[ConsoleLine], None]) -> None:
        """Call ``callback`` with every new line (from the reader thread; keep it quick)."""
        with self._cond:
            self._listeners.append(callback)

    def wait_for(
        self,
        pattern: str | re.Pattern[str],
        *,
        timeout: float,
        since: float | None = None,
    ) -> ConsoleLine:
        """Wait until a line matching ``pattern`` (``re.search``) has been read.

        Args:
            pattern: Regular expression.
            timeout: Seconds to wait at most.
            since: Only lines stamped at or after this time count.

        Raises:
            WaitTimeout: No such line before the deadline, or the console ended first.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = Deadline(timeout)
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    if (since is None or line.time >= since) and regex.search(line.text):
                        return line
                seen = len(self._lines)
                if self._eof or deadline.expired:
                    why = "the console ended" if self._eof else "deadline"
                    raise WaitTimeout(
                        f"console line matching {regex.pattern!r} on {self.name} ({why})",
                        timeout,
                        self._lines[-1].text if self._lines else None,
                    )
                self._cond.wait(deadline.remaining)

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the reader to reach end of file; True when it did."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> bool:
        """Wait for the reader to end (QEMU exited), then close the stream.

        A read blocked in another thread cannot be interrupted by closing its descriptor,
        so the stream is closed only once the reader has ended.

        Returns:
            True when the reader ended.
        """
        ended = self.join(timeout)
        if ended:
            with contextlib.suppress(OSError):
                self._stream.close()
        return ended


def find_lines(lines: Iterable[ConsoleLine], pattern: str) -> list[ConsoleLine]:
    """The lines whose text matches ``pattern`` (``re.search``)."""
    regex = re.compile(pattern)
    return [line for line in lines if regex.search(line.text)]
