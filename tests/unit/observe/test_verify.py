"""Lost-write verification (pure): verified, lost, torn, superseded; the writer's content."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from ocfs2lab.errors import CommandFailed
from ocfs2lab.observe import (
    LostWrites,
    WriteAck,
    WriteRecorder,
    WriteStatus,
    local_reader,
    record_content,
    runner_reader,
    verify_acks,
    writer_script,
)
from ocfs2lab.runner.base import CommandResult
from tests.support.fake import FakeRunner

SIZE = 4096


def load_writer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ocfs2lab_writer", writer_script())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ack(
    seq: int,
    *,
    node: str = "node1",
    path: str = "/mnt/f",
    t: float | None = None,
    content: bytes | None = None,
) -> WriteAck:
    data = record_content(node, seq, SIZE) if content is None else content
    return WriteAck(
        node,
        seq,
        path,
        seq * SIZE,
        len(data),
        hashlib.sha256(data).hexdigest(),
        host_time=1000.0 + seq if t is None else t,
    )


def disk(records: int, node: str = "node1") -> bytearray:
    return bytearray(b"".join(record_content(node, s, SIZE) for s in range(records)))


def reader_of(files: dict[str, bytes]):  # type: ignore[no-untyped-def]
    def read(path: str, offset: int, length: int) -> bytes:
        if path not in files:
            raise FileNotFoundError(path)
        return bytes(files[path][offset : offset + length])

    return read


def test_writer_and_library_derive_the_same_content() -> None:
    writer = load_writer()
    for node, seq, size in [("node1", 0, 4096), ("n√∂de-2", 12345, 512), ("x", 7, 64)]:
        assert writer.record_content(node, seq, size) == record_content(node, seq, size)
    data = record_content("node1", 3, SIZE)
    assert len(data) == SIZE and data.startswith(b"ocfs2lab-writer node=node1 seq=3 size=4096\n")
    assert record_content("node1", 3, SIZE) != record_content("node1", 4, SIZE)
    assert record_content("node1", 3, SIZE) != record_content("node2", 3, SIZE)


def test_all_intact_is_verified() -> None:
    report = verify_acks([ack(s) for s in range(5)], reader_of({"/mnt/f": bytes(disk(5))}))
    assert report.ok and report.acknowledged == 5 and report.verified == 5
    assert report.raise_if_bad() is report
    assert report.summary() == "acknowledged 5, verified 5, lost 0, torn 0"


def test_lost_torn_and_unreadable_are_told_apart() -> None:
    content = disk(6)
    content[1 * SIZE : 2 * SIZE] = bytes(SIZE)  # record 1: zeros
    content[2 * SIZE + 1024 : 2 * SIZE + 1536] = b"\xff" * 512  # record 2: one sector bad
    content[3 * SIZE : 4 * SIZE] = record_content("node9", 3, SIZE)  # record 3: other content
    del content[5 * SIZE + 100 :]  # record 5: short (a cut file)
    cut = bytes(disk(2))[: SIZE + 1000]  # a cut file: record 1 has 1 sector and a bit
    acks = [*(ack(s) for s in range(6)), ack(0, path="/mnt/missing"), ack(1, path="/mnt/cut")]
    report = verify_acks(acks, reader_of({"/mnt/f": bytes(content), "/mnt/cut": cut}))
    status = {(c.ack.path, c.ack.seq): c for c in report.checks}
    assert status[("/mnt/f", 0)].status is WriteStatus.VERIFIED
    assert status[("/mnt/f", 1)].status is WriteStatus.LOST
    assert "zeros" in status[("/mnt/f", 1)].reason
    torn = status[("/mnt/f", 2)]
    assert torn.status is WriteStatus.TORN and torn.good_sectors == 7 and torn.sectors == 8
    assert status[("/mnt/f", 3)].status is WriteStatus.LOST
    assert "other content" in status[("/mnt/f", 3)].reason
    assert status[("/mnt/f", 4)].status is WriteStatus.VERIFIED
    short = status[("/mnt/f", 5)]
    assert short.status is WriteStatus.TORN and "first 100 of 4096 bytes" in short.reason
    missing = status[("/mnt/missing", 0)]
    assert missing.status is WriteStatus.LOST and "FileNotFoundError" in missing.reason
    cut_check = status[("/mnt/cut", 1)]
    assert cut_check.status is WriteStatus.TORN and cut_check.good_sectors == 1
    assert "read 1000 of 4096" in cut_check.reason
    assert not report.ok
    assert (report.verified, len(report.lost), len(report.torn)) == (2, 3, 3)
    with pytest.raises(LostWrites) as info:
        report.raise_if_bad()
    assert info.value.report is report
    assert "lost 3, torn 3" in str(info.value) and "node1 seq 1 /mnt/f@4096+4096" in str(info.value)


def test_content_of_another_writer_version_is_judged_whole() -> None:
    odd = b"A" * SIZE
    a = ack(0, content=odd)
    assert verify_acks([a], reader_of({"/mnt/f": odd})).ok
    report = verify_acks([a], reader_of({"/mnt/f": b"B" * SIZE}))
    assert report.checks[0].status is WriteStatus.TORN and report.checks[0].good_sectors is None
    report = verify_acks([a], reader_of({"/mnt/f": bytes(SIZE)}))
    assert report.checks[0].status is WriteStatus.LOST


def test_only_the_latest_ack_of_a_place_counts() -> None:
    old = ack(0, content=b"old!" * 1024, t=1.0)
    new = ack(0, t=2.0)
    report = verify_acks([old, new], reader_of({"/mnt/f": bytes(disk(1))}))
    assert report.ok and report.acknowledged == 1 and report.superseded == 1


def test_local_reader(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(bytes(disk(2)))
    read = local_reader()
    assert read(str(f), SIZE, SIZE) == record_content("node1", 1, SIZE)
    rooted = local_reader(tmp_path)
    assert rooted("/f", 0, 10) == b"ocfs2lab-w"
    assert read(str(f), 2 * SIZE, SIZE) == b""


def test_runner_reader_reads_each_file_once() -> None:
    content = bytes(disk(3)).decode("latin-1")
    runner = FakeRunner([(r"^cat -- /mnt/f$", (0, "")), (r"^cat -- /mnt/gone$", (1, ""))])

    # FakeRunner encodes str as UTF-8; answer with the raw bytes instead.
    def run(argv, **kwargs):  # type: ignore[no-untyped-def]
        runner.calls.append(tuple(argv))
        if argv[-1] == "/mnt/gone":
            raise CommandFailed(CommandResult(tuple(argv), 1, b"", b"No such file", 0.0, "fake"))
        return CommandResult(tuple(argv), 0, content.encode("latin-1"), b"", 0.0, "fake")

    runner.run = run  # type: ignore[method-assign]
    read = runner_reader(runner)
    report = verify_acks([*(ack(s) for s in range(3)), ack(0, path="/mnt/gone")], read)
    assert report.verified == 3 and len(report.lost) == 1
    assert "No such file" in report.lost[0].reason
    assert runner.calls == [("cat", "--", "/mnt/f"), ("cat", "--", "/mnt/gone")]


def test_writer_argv_names_the_addresses() -> None:
    with WriteRecorder() as rec:
        argv = rec.writer_argv(node="node1", file="/mnt/ocfs2/w-node1", count=10, interval=0.1)
        assert argv[0] == "python3" and argv[1] == str(writer_script())
        assert argv[argv.index("--recorder") + 1] == f"10.0.2.2:{rec.port}"
        assert rec.address == f"127.0.0.1:{rec.port}"
        assert argv[argv.index("--interval") + 1] == "0.1"
