"""Reading acknowledged writes back after a fault: which are verified, lost or torn.

Every record a writer acknowledged ([`WriteAck`][ocfs2lab.observe.wire.WriteAck]) must read
back intact on a survivor. [`verify_acks`][ocfs2lab.observe.verify.verify_acks] reads each one
back through a `Reader` (on this machine:
[`local_reader`][ocfs2lab.observe.verify.local_reader]; through a runner on a node:
[`runner_reader`][ocfs2lab.observe.verify.runner_reader]) and returns a
[`VerifyReport`][ocfs2lab.observe.verify.VerifyReport]: one
[`WriteCheck`][ocfs2lab.observe.verify.WriteCheck] per record, whose content is compared sector by
sector with what the writer wrote
([`record_content`][ocfs2lab.observe.wire.record_content]) to tell a torn record from a lost one.
"""

from __future__ import annotations

import enum
import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from attrs import frozen

from ocfs2lab.errors import LostWrites, Ocfs2LabError
from ocfs2lab.observe.wire import WriteAck, record_content
from ocfs2lab.runner.base import Runner

__all__ = [
    "SECTOR",
    "LostWrites",
    "Reader",
    "VerifyReport",
    "WriteCheck",
    "WriteStatus",
    "local_reader",
    "runner_reader",
    "verify_acks",
]

#: Sector size used to tell a torn record (some sectors right) from a lost one.
SECTOR = 512

#: Reads ``length`` bytes at ``offset`` of ``path`` on a surviving node.
Reader = Callable[[str, int, int], bytes]


class WriteStatus(enum.StrEnum):
    """What reading an acknowledged record back showed."""

    VERIFIED = "verified"
    """Read back exactly as acknowledged."""
    LOST = "lost"
    """Nothing of it is there (unreadable, missing, short, zeros, other content)."""
    TORN = "torn"
    """Partly there: some sectors right, others not."""


@frozen
class WriteCheck:
    """The check of one acknowledged record.

    Attributes:
        ack: The acknowledgement.
        status: What reading it back showed.
        reason: Why it is not verified ("" when it is).
        good_sectors: Sectors that hold the expected content (when it could be derived).
        sectors: Sectors in the record.
    """

    ack: WriteAck
    status: WriteStatus
    reason: str = ""
    good_sectors: int | None = None
    sectors: int = 0


@frozen
class VerifyReport:
    """Every acknowledged record, read back.

    Attributes:
        checks: One check per acknowledged record (the latest ack per location).
        superseded: Acks of a location acknowledged again later (not checked).
    """

    checks: tuple[WriteCheck, ...]
    superseded: int = 0

    @property
    def acknowledged(self) -> int:
        """Records checked."""
        return len(self.checks)

    @property
    def verified(self) -> int:
        """Records read back intact."""
        return sum(1 for c in self.checks if c.status is WriteStatus.VERIFIED)

    @property
    def lost(self) -> tuple[WriteCheck, ...]:
        """Checks of records that are gone."""
        return tuple(c for c in self.checks if c.status is WriteStatus.LOST)

    @property
    def torn(self) -> tuple[WriteCheck, ...]:
        """Checks of records that are partly there."""
        return tuple(c for c in self.checks if c.status is WriteStatus.TORN)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing torn."""
        return self.verified == self.acknowledged

    def summary(self) -> str:
        """``acknowledged 120, verified 120, lost 0, torn 0`` (plus the first problems)."""
        text = (
            f"acknowledged {self.acknowledged}, verified {self.verified}, "
            f"lost {len(self.lost)}, torn {len(self.torn)}"
        )
        bad = [c for c in self.checks if c.status is not WriteStatus.VERIFIED]
        for c in bad[:10]:
            a = c.ack
            text += (
                f"\n  {c.status.value}: {a.node} seq {a.seq} {a.path}@{a.offset}+{a.length}"
                f" (acked at {a.host_time:.6f}): {c.reason}"
            )
        if len(bad) > 10:
            text += f"\n  ... and {len(bad) - 10} more"
        return text

    def raise_if_bad(self) -> VerifyReport:
        """Return self when nothing was lost or torn.

        Raises:
            LostWrites: Some acknowledged record did not read back intact.
        """
        if not self.ok:
            raise LostWrites(self)
        return self


def _check(ack: WriteAck, data: bytes) -> WriteCheck:
    sectors = max(1, -(-ack.length // SECTOR))
    if len(data) >= ack.length and hashlib.sha256(data[: ack.length]).hexdigest() == ack.sha256:
        return WriteCheck(ack, WriteStatus.VERIFIED, "", sectors, sectors)
    expected = record_content(ack.node, ack.seq, ack.length)
    short = f" (read {len(data)} of {ack.length} bytes)" if len(data) < ack.length else ""
    if hashlib.sha256(expected).hexdigest() != ack.sha256:
        # Content not derivable (another writer version): whole-record judgement only.
        if not data.strip(b"\0"):
            return WriteCheck(ack, WriteStatus.LOST, "reads back as zeros" + short, None, sectors)
        return WriteCheck(ack, WriteStatus.TORN, "content differs" + short, None, sectors)
    good = sum(
        1
        for i in range(sectors)
        if data[i * SECTOR : (i + 1) * SECTOR] == expected[i * SECTOR : (i + 1) * SECTOR]
    )
    if good == 0 and data and data == expected[: len(data)]:
        reason = f"only the first {len(data)} of {ack.length} bytes are there"
        return WriteCheck(ack, WriteStatus.TORN, reason, 0, sectors)
    if good == 0:
        what = "zeros" if not data.strip(b"\0") else "other content"
        return WriteCheck(ack, WriteStatus.LOST, f"reads back as {what}{short}", 0, sectors)
    return WriteCheck(
        ack, WriteStatus.TORN, f"{good} of {sectors} sectors intact{short}", good, sectors
    )


def verify_acks(acks: Iterable[WriteAck], reader: Reader) -> VerifyReport:
    """Read every acknowledged record back and compare.

    Only the latest ack of each ``(node, path, offset)`` is checked (a later write of the
    same place legitimately replaced the earlier one).

    Args:
        acks: The acknowledgements.
        reader: ``reader(path, offset, length) -> bytes`` on a surviving node. An
            ``OSError`` or [`Ocfs2LabError`][ocfs2lab.errors.Ocfs2LabError] from it marks the record
            lost (a missing file, an unreadable device).

    Returns:
        The report.
    """
    latest: dict[tuple[str, str, int], WriteAck] = {}
    total = 0
    for ack in acks:
        total += 1
        key = (ack.node, ack.path, ack.offset)
        old = latest.get(key)
        if old is None or (ack.host_time, ack.seq) >= (old.host_time, old.seq):
            latest[key] = ack
    checks: list[WriteCheck] = []
    for ack in sorted(latest.values(), key=lambda a: (a.host_time, a.node, a.seq)):
        try:
            data = reader(ack.path, ack.offset, ack.length)
        except (OSError, Ocfs2LabError) as exc:
            sectors = max(1, -(-ack.length // SECTOR))
            reason = f"unreadable: {type(exc).__name__}: {exc}"[:300]
            checks.append(WriteCheck(ack, WriteStatus.LOST, reason, None, sectors))
            continue
        checks.append(_check(ack, bytes(data)))
    return VerifyReport(tuple(checks), superseded=total - len(latest))


def local_reader(root: str | Path | None = None) -> Reader:
    """A reader of files on this machine (``root`` is prepended to absolute paths).

    Returns:
        ``reader(path, offset, length) -> bytes`` (``pread``; short at end of file).
    """

    def read(path: str, offset: int, length: int) -> bytes:
        target = Path(path) if root is None else Path(root) / Path(path).relative_to("/")
        fd = os.open(target, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    return read


def runner_reader(runner: Runner, *, timeout: float = 120.0) -> Reader:
    """A reader through a runner: each file is read once (``cat``) and cached.

    Make a new reader for each verification (after a revive, read again).

    Args:
        runner: Runs commands on the surviving node.
        timeout: Timeout of one ``cat``.

    Returns:
        ``reader(path, offset, length) -> bytes``. A failing ``cat`` (missing file, I/O
        error) raises [`CommandFailed`][ocfs2lab.errors.CommandFailed], which marks records lost.
    """
    cache: dict[str, bytes] = {}
    lock = threading.Lock()

    def read(path: str, offset: int, length: int) -> bytes:
        with lock:
            if path not in cache:
                cache[path] = runner.run(["cat", "--", path], timeout=timeout).stdout_bytes
            return cache[path][offset : offset + length]

    return read
