"""The lost-write recorder and the writer, for real on this machine; the dmesg poller too.

The writer (ocfs2lab/observe/assets/writer.py) runs as a local process through LocalRunner
(in a thread: runners run to completion), writes fsynced records into a tmp dir and
reports each to a recorder on 127.0.0.1 (or a unix socket); it is stopped by its pid (from
its hello) with SIGKILL or SIGTERM. Every acknowledged record must read back intact.

The last test polls this machine's own kernel log through LocalRunner and, when the test
runs as root, writes a marker line into /dev/kmsg to check the clock mapping.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocfs2lab.observe import (
    DmesgPoller,
    EventKind,
    Expect,
    LabEventKind,
    LostWrites,
    Timeline,
    WriteRecorder,
    WriteStatus,
    local_reader,
    record_content,
)
from ocfs2lab.runner.base import CommandResult
from ocfs2lab.runner.local import LocalRunner

pytestmark = pytest.mark.integration

SIZE = 4096


class WriterRun:
    """The writer run through LocalRunner in a thread."""

    def __init__(self, argv: list[str], timeout: float = 60.0) -> None:
        self.result: CommandResult | None = None
        self._thread = threading.Thread(target=self._run, args=(argv, timeout), daemon=True)
        self._thread.start()

    def _run(self, argv: list[str], timeout: float) -> None:
        with LocalRunner() as runner:
            self.result = runner.run(argv, check=False, timeout=timeout)

    def wait(self, timeout: float = 30.0) -> CommandResult:
        self._thread.join(timeout)
        assert self.result is not None, "the writer did not end"
        return self.result


@pytest.fixture
def timeline() -> Timeline:
    return Timeline()


@pytest.fixture
def recorder(timeline: Timeline) -> Iterator[WriteRecorder]:
    with WriteRecorder(timeline=timeline) as rec:
        yield rec


def writer_argv(
    rec: WriteRecorder, file: Path, *, address: str | None = None, **kw: object
) -> list[str]:
    return rec.writer_argv(
        node="node1",
        file=str(file),
        address=address or rec.address,
        python=sys.executable,
        size=SIZE,
        **kw,  # type: ignore[arg-type]
    )


def test_every_acknowledged_write_survives_a_sigkill(
    recorder: WriteRecorder, timeline: Timeline, tmp_path: Path
) -> None:
    target = tmp_path / "data"
    run = WriterRun(writer_argv(recorder, target))
    recorder.wait_for_acks(200, timeout=30)
    [writer] = recorder.writers
    assert writer.node == "node1" and writer.path == str(target) and writer.pid is not None
    killed_at = time.time()
    os.kill(writer.pid, signal.SIGKILL)
    result = run.wait()
    assert result.exit_code == -signal.SIGKILL
    timeline.expect(Expect(LabEventKind.WRITER_STOPPED, node="node1"), timeout=10)
    [writer] = recorder.writers
    assert not writer.clean and writer.reason == "connection closed without bye"

    acks = recorder.acks()
    assert len(acks) >= 200 and writer.records == len(acks)
    assert [a.seq for a in acks] == list(range(len(acks)))
    assert all(a.host_time <= killed_at + 1 for a in acks)
    assert [a.host_time for a in acks] == sorted(a.host_time for a in acks)
    assert all(a.node_time is not None and abs(a.host_time - a.node_time) < 1 for a in acks)
    assert target.stat().st_size >= len(acks) * SIZE

    report = recorder.verify(local_reader())
    assert report.ok, report.summary()
    assert report.acknowledged == report.verified == len(acks)
    # The timeline holds the writer's life: started, every ack, stopped.
    assert len(timeline.events(LabEventKind.WRITE_ACKED, node="node1")) == len(acks)
    started = timeline.first(LabEventKind.WRITER_STARTED)
    assert started is not None and started.node == "node1"
    assert started.time <= acks[0].host_time
    gap = recorder.max_gap("node1")
    assert gap is not None and gap[0] < 5


def test_sigterm_stops_the_writer_cleanly(
    recorder: WriteRecorder, timeline: Timeline, tmp_path: Path
) -> None:
    run = WriterRun(writer_argv(recorder, tmp_path / "data", interval=0.01))
    recorder.wait_for_acks(20, timeout=30)
    pid = recorder.writers[0].pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    result = run.wait()
    assert result.exit_code == 0, result.stderr
    [stopped] = timeline.expect(LabEventKind.WRITER_STOPPED, timeout=10)
    assert stopped.lab is not None and stopped.lab.data["clean"] is True
    writer = recorder.writers[0]
    assert writer.clean and writer.reason == "signal"
    assert writer.records == recorder.count("node1") >= 20
    assert recorder.verify(local_reader()).ok


def test_unix_socket_and_a_fixed_count(tmp_path: Path) -> None:
    sock = tmp_path / "recorder.sock"
    timeline = Timeline()
    with WriteRecorder(timeline=timeline, tcp=False, unix_path=sock) as rec:
        argv = writer_argv(rec, tmp_path / "data", address=rec.unix_address, count=50)
        assert argv[argv.index("--recorder") + 1] == f"unix:{sock}"
        result = WriterRun(argv).wait()
        assert result.exit_code == 0, result.stderr
        timeline.expect(LabEventKind.WRITER_STOPPED, timeout=10)
        assert rec.count() == 50
        assert rec.writers[0].clean and rec.writers[0].reason == "count reached"
        assert rec.verify(local_reader()).ok
    assert not sock.exists()


def test_damage_on_disk_is_reported(recorder: WriteRecorder, tmp_path: Path) -> None:
    target = tmp_path / "data"
    assert WriterRun(writer_argv(recorder, target, count=20)).wait().exit_code == 0
    recorder.wait_for_acks(20, timeout=10)
    with target.open("r+b") as f:
        f.seek(5 * SIZE + 512)
        f.write(b"\0" * 512)  # record 5: one sector lost
        f.seek(7 * SIZE)
        f.write(b"\0" * SIZE)  # record 7: all lost
    report = recorder.verify(local_reader())
    assert (report.verified, len(report.lost), len(report.torn)) == (18, 1, 1)
    assert report.lost[0].ack.seq == 7
    assert report.torn[0].ack.seq == 5 and report.torn[0].good_sectors == 7
    assert report.checks[5].status is WriteStatus.TORN
    with pytest.raises(LostWrites):
        report.raise_if_bad()
    # Content is derivable without the recorder's copy.
    with target.open("rb") as f:
        f.seek(3 * SIZE)
        assert f.read(SIZE) == record_content("node1", 3, SIZE)


def test_a_writer_without_a_recorder_does_not_write(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with WriteRecorder() as rec:
        argv = writer_argv(rec, tmp_path / "data", address=f"127.0.0.1:{port}")
    result = WriterRun(argv).wait()
    assert result.exit_code == 2
    assert "cannot reach the recorder" in result.stderr
    assert not (tmp_path / "data").exists()


def test_malformed_lines_are_counted_and_serving_goes_on(
    recorder: WriteRecorder, timeline: Timeline
) -> None:
    good = (
        '{"type":"ack","v":1,"node":"n","seq":0,"path":"/p","offset":0,"length":4096,'
        '"sha256":"' + "ab" * 32 + '"}\n'
    )
    with socket.create_connection(("127.0.0.1", recorder.port)) as client:
        client.sendall(b"not json\n[1, 2]\n" + b'{"type": "what"}\n' + good.encode())
        client.sendall(b'{"type":"ack","node":"n","seq":1}\n')  # missing fields
        client.sendall(b"x" * 70000)  # no newline: too long
        recorder.wait_for_acks(1, timeout=5)
        deadline = time.monotonic() + 5
        while recorder.rejected < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert recorder.rejected == 5
    assert recorder.count() == 1 and recorder.acks()[0].sha256 == "ab" * 32
    ack_event = timeline.first(LabEventKind.WRITE_ACKED)
    assert ack_event is not None and ack_event.node == "n"
    # A new client is still served.
    with socket.create_connection(("127.0.0.1", recorder.port)) as client:
        client.sendall(good.replace('"seq":0', '"seq":2').encode())
        recorder.wait_for_acks(2, timeout=5)


def test_dmesg_poller_on_this_machine() -> None:
    runner = LocalRunner()
    if not runner.run(["dmesg"], check=False, timeout=30).ok:
        pytest.skip("dmesg is not permitted here (kernel.dmesg_restrict)")
    timeline = Timeline()
    with DmesgPoller(runner, timeline, "host", interval=0.2) as poller:
        timeline.expect(LabEventKind.NOTE, timeout=30)
        cmap = poller.clock_map
        assert cmap.uncertainty < 0.1  # a local command: a few milliseconds
        if not os.access("/dev/kmsg", os.W_OK):
            return  # cannot write a line to the kernel log: the mapping was checked
        marker = f"ocfs2lab-observe-test {uuid.uuid4()}"
        before = time.time()
        with open("/dev/kmsg", "w") as kmsg:
            kmsg.write(f"<6>{marker}\n")
        after = time.time()
        [event] = timeline.expect(
            Expect(EventKind.UNKNOWN, node="host", where=lambda e: marker in e.text),
            after=before - 1,
            timeout=30,
        )
        slack = cmap.uncertainty + 0.05
        assert before - slack <= event.time <= after + slack
        assert event.kernel is not None and event.kernel.timestamp is not None
        assert poller.polls >= 2 and poller.failures == 0
    assert not poller.running
    assert len(timeline.events(source="kernel", since=before - 1)) >= 1
