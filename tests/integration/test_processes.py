"""Long-lived processes for real: spawn, the VDE switch, background processes on a node,
and the SSH reverse forward that carries a writer's reports."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocfs2lab.errors import SpawnError, SpecError
from ocfs2lab.host.base import Machine
from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.node.base import NodeKind
from ocfs2lab.runner.base import Runner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.process import spawn
from ocfs2lab.runner.ssh import SshRunner
from ocfs2lab.spec.cluster import NodeSpec
from ocfs2lab.spec.link import LinkSpec
from ocfs2lab.vm.qemu import proc_start_time
from ocfs2lab.vm.switch import LinkFilter, VdeSwitch, reap_stale_switches
from ocfs2lab.wait import wait_until
from tests.support.procs import gone

needs_vde = pytest.mark.skipif(
    shutil.which("vde_switch") is None, reason="vde_switch is not installed (vde2)"
)


# -- spawn ---------------------------------------------------------------------------------
def test_spawn_logs_and_stops_by_pid(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    proc = spawn(["sh", "-c", "echo started; exec sleep 300"], log_path=log, name="sleeper")
    try:
        wait_until(lambda: "started" in proc.log_text() or None, what="output", timeout=10)
        assert proc.running and proc.pid > 0
        assert os.getpgid(proc.pid) == proc.pid  # a session of its own
    finally:
        code = proc.stop(grace=5)
    assert code == -signal.SIGTERM and not proc.running
    assert proc.stop() == code  # idempotent


def test_spawn_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    proc = spawn(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
        log_path=tmp_path / "stubborn.log",
    )
    wait_until(lambda: "ready" in proc.log_text() or None, what="trap set", timeout=10)
    assert proc.stop(grace=0.5) == -signal.SIGKILL


def test_spawn_with_a_stdin_pipe_ends_when_the_pipe_closes(tmp_path: Path) -> None:
    proc = spawn(["cat"], log_path=tmp_path / "cat.log", stdin_pipe=True)
    assert proc.wait(0.3) is None  # cat waits on the open pipe
    assert proc.process.stdin is not None
    proc.process.stdin.close()
    assert proc.wait(10) == 0


def test_spawn_refuses_bad_argv_and_reports_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        spawn("sleep 1", log_path=tmp_path / "x.log")
    with pytest.raises(SpecError):
        spawn([], log_path=tmp_path / "x.log")
    with pytest.raises(SpawnError, match="cannot start"):
        spawn(["/nonexistent/program"], log_path=tmp_path / "x.log")


# -- the VDE switch ------------------------------------------------------------------------
@needs_vde
def test_switch_starts_and_leaves_nothing() -> None:
    with VdeSwitch() as switch:
        assert switch.running and (switch.socket / "ctl").exists()
        pid, directory = switch.pid, switch.directory
        assert pid is not None and directory is not None
        start = proc_start_time(pid)
    assert not switch.running
    assert gone(pid, start)
    assert not directory.exists()


@needs_vde
def test_switch_ends_with_its_owner_and_the_reaper_removes_its_directory(tmp_path: Path) -> None:
    # The owner is another Python process, killed with SIGKILL: its switch must not stay.
    code = (
        "import sys, time\n"
        "from ocfs2lab.vm.switch import VdeSwitch\n"
        "sw = VdeSwitch().__enter__()\n"
        "print(sw.pid, sw.directory, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = spawn([sys.executable, "-c", code], log_path=tmp_path / "owner.log")
    try:
        line = wait_until(
            lambda: owner.log_text().strip() or None, what="the owner's switch", timeout=60
        )
        pid_text, directory_text = line.split()[:2]
        pid, directory = int(pid_text), Path(directory_text)
        start = proc_start_time(pid)
        assert start is not None
    finally:
        owner.process.send_signal(signal.SIGKILL)
        owner.wait(10)
    wait_until(lambda: gone(pid, start) or None, what="the orphaned switch to end", timeout=30)
    assert directory.exists()
    assert directory in reap_stale_switches(directory.parent)
    assert not directory.exists()


@needs_vde
def test_the_reaper_leaves_a_live_owners_switch_alone() -> None:
    with VdeSwitch() as switch:
        assert switch.directory is not None
        assert switch.directory not in reap_stale_switches(switch.directory.parent)
        assert switch.running


# -- background processes on a node ----------------------------------------------------------
class LocalNode(Machine):
    """This machine as a node (background processes need only a runner)."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner, "local")
        self._spec = NodeSpec(name="local", number=1, address="10.9.9.1")

    @property
    def spec(self) -> NodeSpec:
        return self._spec

    @property
    def kind(self) -> NodeKind:
        return "ssh"

    @property
    def up(self) -> bool:
        return True


@pytest.fixture
def local_node() -> Iterator[LocalNode]:
    with LocalRunner() as runner:
        yield LocalNode(runner)


def test_a_background_process_outlives_its_start_and_stops_by_pid(
    local_node: LocalNode, tmp_path: Path
) -> None:
    log = tmp_path / "bg.log"
    proc = RemoteProcess.start(
        local_node, ["sh", "-c", "echo hello; exec sleep 300"], log_path=str(log)
    )
    try:
        assert proc.alive()
        wait_until(lambda: "hello" in proc.output() or None, what="output", timeout=10)
    finally:
        proc.stop(grace=10)
    assert not proc.alive()
    assert not proc.signal("TERM")  # gone: nothing to signal


def test_a_background_process_that_ignores_sigterm_is_killed(
    local_node: LocalNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc = RemoteProcess.start(
        local_node,
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
        log_path=str(tmp_path / "stubborn.log"),
    )
    wait_until(lambda: "ready" in proc.output() or None, what="trap set", timeout=10)
    assert proc.alive()
    with caplog.at_level(logging.WARNING):
        proc.stop(grace=1)
    assert not proc.alive()
    # SIGTERM was ignored: it took the SIGKILL.
    assert f"pid {proc.pid} ignored SIGTERM; SIGKILL" in caplog.text


def test_a_background_process_through_ssh(ssh_runner: SshRunner, tmp_path: Path) -> None:
    node = LocalNode(ssh_runner)
    proc = RemoteProcess.start(node, ["sleep", "300"], log_path=str(tmp_path / "ssh-bg.log"))
    try:
        assert proc.alive()
    finally:
        proc.stop(grace=10)
    assert not proc.alive()


# -- the reverse forward a writer reports through ----------------------------------------------
def test_reverse_forward_reaches_a_listener_here(ssh_runner: SshRunner) -> None:
    received: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(30)

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(100))

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        port = ssh_runner.reverse_forward(server.getsockname()[1])
        assert port > 0 and port != server.getsockname()[1]
        # On the "remote" side (the throwaway sshd runs here too), connect to its port.
        send = (
            "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
            "s.sendall(b'ack over ssh'); s.close()"
        )
        ssh_runner.run(["python3", "-c", send, str(port)], timeout=30)
        thread.join(30)
    assert received == [b"ack over ssh"]


# -- a machine's link filter -----------------------------------------------------------------
def _frame(tag: bytes) -> bytes:
    """A broadcast Ethernet frame carrying ``tag``, in vde_plug's stream format (its
    length in 2 bytes, then the frame)."""
    frame = b"\xff" * 6 + b"\x52\x54\x00\x00\x00\x01" + b"\x88\xb5" + tag.ljust(60, b".")
    return len(frame).to_bytes(2, "big") + frame


class _Plugs:
    """A sender plugged into one switch and a listener plugged into another."""

    def __init__(self, send_to: Path, listen_on: Path) -> None:
        self.listener = subprocess.Popen(
            ["vde_plug", str(listen_on)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.sender = subprocess.Popen(["vde_plug", str(send_to)], stdin=subprocess.PIPE)
        self.heard = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.markers = 0

    def _read(self) -> None:
        assert self.listener.stdout is not None
        while chunk := self.listener.stdout.read1(65536):  # type: ignore[attr-defined]
            self.heard += chunk

    def send(self, tag: bytes, count: int = 1) -> None:
        assert self.sender.stdin is not None
        self.sender.stdin.write(_frame(tag) * count)
        self.sender.stdin.flush()

    def through(self) -> None:
        """Send markers until one arrives: the path is up and earlier frames are in."""
        self.markers += 1
        marker = f"marker{self.markers}".encode()

        def arrived() -> bool | None:
            self.send(marker)
            return marker in self.heard or None

        wait_until(arrived, what="a frame across the link", timeout=30, interval=0.2)

    def count(self, tag: bytes) -> int:
        return self.heard.count(tag)

    def close(self) -> None:
        for proc in (self.sender, self.listener):
            proc.kill()
            proc.wait(timeout=10)


@needs_vde
def test_a_link_filter_drops_and_duplicates_between_a_port_and_its_switch() -> None:
    """Real frames through wirefilter, each count taken once a later marker came through
    the same path: all 20 pass by default; with 50% duplication (and a delay with jitter)
    more than 20 arrive, with 50% loss fewer (either fails by chance once in a million);
    showinfo says what is set; nothing is left afterwards. (On a VM's real traffic:
    tests/lab/test_fault_campaigns.py.)"""
    with VdeSwitch() as upstream, LinkFilter(upstream.socket) as link:
        plugs = _Plugs(link.socket, upstream.socket)
        try:
            plugs.through()
            plugs.send(b"plain", 20)
            plugs.through()
            assert plugs.count(b"plain") == 20
            link.set(LinkSpec(duplicate_pct=50, delay_ms=20, jitter_ms=5))
            plugs.send(b"twice", 20)
            plugs.through()
            assert plugs.count(b"twice") > 20
            shown = link.show()
            link.set(LinkSpec(loss_pct=50))
            plugs.send(b"lossy", 20)
            plugs.through()
            assert 0 < plugs.count(b"lossy") < 20
            link.clear()
        finally:
            plugs.close()
        assert "Delay  L->R 20+5U" in shown and "Dup    L->R 50" in shown, shown
        assert "Loss   L->R 0+0U" in link.show()
        with pytest.raises(SpecError, match="direction"):
            link.set(direction="sideways")
        assert link.process is not None and link.port is not None
        pids = [link.process.pid, link.port.pid]
        starts = [proc_start_time(pid) for pid in pids if pid is not None]
        directory = link.port.directory
    assert all(gone(pid, start) for pid, start in zip(pids, starts, strict=True) if pid)
    assert directory is not None and not directory.exists()
