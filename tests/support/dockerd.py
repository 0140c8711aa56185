"""A private docker engine for tests: its own dockerd, containerd, dirs and socket.

``private_dockerd()`` starts ``dockerd`` with its own ``--data-root``, ``--exec-root``,
unix socket, pidfile, config file and cgroup parent, and no host networking at all
(``--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false``):
it adds no bridge, no iptables chain and no sysctl change to the host. dockerd starts its own
containerd (checked: a child of this dockerd). Teardown stops dockerd by its pid (SIGTERM,
then SIGKILL after a deadline), then anything still running from its directories, unmounts
what is left mounted under them, removes them and the cgroup directories.

``busybox_image()`` builds ``ocfs2lab-test-busybox:latest`` offline from the host's static
busybox, and ``busybox_container()`` runs it with no network.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
from attrs import define

from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)

IMAGE = "ocfs2lab-test-busybox:latest"
BUSYBOX = "/bin/busybox"
SYSTEM_CONTAINERD_SOCKET = Path("/run/containerd/containerd.sock")
CGROUP_ROOT = Path("/sys/fs/cgroup")
LABEL = "ocfs2lab.test"


def dockerd_binary() -> str | None:
    """Path of dockerd, or ``None`` when it is not installed."""
    return shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")


def busybox_binary() -> str | None:
    """Path of a static busybox, or ``None``."""
    return BUSYBOX if os.access(BUSYBOX, os.X_OK) else shutil.which("busybox")


@define
class PrivateDockerd:
    """A running private docker engine.

    Attributes:
        base: Its private directory (data root, exec root, socket, pidfile, log).
        process: The dockerd process.
        client: A docker SDK client connected to its socket.
        cgroup_parent: The cgroup its containers go under (removed at teardown).
        containerd_pid: Pid of the containerd this dockerd started.
    """

    base: Path
    process: subprocess.Popen[bytes]
    client: docker.DockerClient
    cgroup_parent: str
    containerd_pid: int

    @property
    def socket(self) -> Path:
        """The engine's unix socket."""
        return self.base / "d.sock"

    @property
    def base_url(self) -> str:
        """``unix://`` URL of the socket."""
        return f"unix://{self.socket}"

    def log_text(self) -> str:
        """dockerd's (and its containerd's) log so far."""
        return (self.base / "dockerd.log").read_text(errors="replace")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pids_using(base: Path) -> list[int]:
    """Processes whose command line names our private directory: ours by construction."""
    needle = os.fsencode(base)
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != os.getpid() and needle in _cmdline(int(p.name))
    ]


def _mounts_under(base: Path) -> list[str]:
    """Mount points at or below ``base``, deepest first."""
    prefix = str(base)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all_under(base: Path) -> None:
    """Unmount everything mounted under ``base`` (lazily when a plain umount fails)."""
    for _ in range(5):
        points = _mounts_under(base)
        if not points:
            return
        for point in points:
            res = subprocess.run(["umount", point], check=False, capture_output=True, timeout=30)
            if res.returncode != 0:
                subprocess.run(
                    ["umount", "-l", point], check=False, capture_output=True, timeout=30
                )
    left = _mounts_under(base)
    if left:
        raise RuntimeError(f"mounts left under {base}: {left}")


def _kill_and_wait(pids: list[int], timeout: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = Deadline(timeout)
        while any(_alive(p) for p in pids) and not deadline.expired:
            time.sleep(0.05)
        pids = [p for p in pids if _alive(p)]
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _remove_cgroups(parent: str) -> None:
    name = parent.strip("/")
    if not name or not CGROUP_ROOT.is_dir():
        return
    for controller in CGROUP_ROOT.iterdir():
        top = controller / name
        if not top.is_dir():
            continue
        # Children first: a cgroup directory can be removed only once it has none.
        for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def stop_dockerd(proc: subprocess.Popen[bytes], base: Path, timeout: float = 30.0) -> None:
    """Stop dockerd by its pid: SIGTERM, SIGKILL after ``timeout``; then anything of ours."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("dockerd %d did not stop in %g s, killing it", proc.pid, timeout)
            proc.kill()
            proc.wait(timeout)
    # containerd and shims started from our directories, if dockerd left any.
    leftovers = _pids_using(base)
    if leftovers:
        log.warning("killing processes left in %s: %s", base, leftovers)
        _kill_and_wait(leftovers, 10)


@contextlib.contextmanager
def private_dockerd(*, start_timeout: float = 60.0) -> Iterator[PrivateDockerd]:
    """Start a private dockerd and remove every trace of it on exit.

    Raises:
        RuntimeError: dockerd is missing, a system containerd would be used instead of its
            own, or it did not come up.
    """
    binary = dockerd_binary()
    if binary is None:
        raise RuntimeError("dockerd is not installed")
    if SYSTEM_CONTAINERD_SOCKET.exists():
        raise RuntimeError(
            f"{SYSTEM_CONTAINERD_SOCKET} exists: dockerd would use that system containerd "
            "instead of starting its own"
        )
    # Short base path: containerd puts unix sockets under the exec root.
    base = Path(tempfile.mkdtemp(prefix="o2d-"))
    cgroup_parent = f"/ocfs2lab-test-{uuid.uuid4().hex[:10]}"
    proc: subprocess.Popen[bytes] | None = None
    client: docker.DockerClient | None = None
    try:
        base.chmod(0o700)
        config = base / "daemon.json"
        # The trust key would otherwise be written to /etc/docker/key.json.
        config.write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
        argv = [
            binary,
            "--config-file",
            str(config),
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(base / "x"),
            "--host",
            f"unix://{base / 'd.sock'}",
            "--pidfile",
            str(base / "d.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--cgroup-parent",
            cgroup_parent,
        ]
        with (base / "dockerd.log").open("wb") as log_file:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        deadline = Deadline(start_timeout)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with {proc.returncode} at start:\n"
                    + (base / "dockerd.log").read_text(errors="replace")[-3000:]
                )
            if (base / "d.sock").exists():
                # Making the client asks the engine for its API version: a readiness probe.
                with contextlib.suppress(docker.errors.DockerException, OSError):
                    client = docker.DockerClient(base_url=f"unix://{base / 'd.sock'}", timeout=60)
                if client is not None and client.ping():
                    break
            if deadline.expired:
                raise RuntimeError(f"dockerd did not answer within {start_timeout} s")
            time.sleep(0.05)
        own = [p for p in _children(proc.pid) if b"containerd" in _cmdline(p).split(b"\0")[0]]
        if not own:
            raise RuntimeError("dockerd did not start its own containerd (a system one?)")
        yield PrivateDockerd(
            base=base,
            process=proc,
            client=client,
            cgroup_parent=cgroup_parent,
            containerd_pid=own[0],
        )
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                for c in client.containers.list(all=True):
                    c.remove(force=True)
            client.close()
        if proc is not None:
            stop_dockerd(proc, base)
        unmount_all_under(base)
        shutil.rmtree(base, ignore_errors=True)
        _remove_cgroups(cgroup_parent)


def busybox_rootfs_tar(busybox: str | None = None) -> bytes:
    """A tar (in memory) of a tiny rootfs: /bin/busybox and a symlink per applet."""
    binary = busybox or busybox_binary()
    if binary is None:
        raise RuntimeError("busybox is not installed (busybox-static)")
    listing = subprocess.run([binary, "--list"], capture_output=True, text=True, check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in [
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sys", 0o555),
            ("tmp", 0o1777),
        ]:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        tar.add(binary, arcname="bin/busybox")
        for applet in sorted(set(listing.stdout.split()) - {"busybox"}):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        for name, text in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def busybox_image(client: docker.DockerClient, tag: str = IMAGE) -> str:
    """Import the busybox rootfs as ``tag`` (offline: no registry); return its id."""
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(
        busybox_rootfs_tar(),
        repository=repository,
        tag=version or "latest",
        changes=["ENV PATH=/bin", 'CMD ["sleep", "infinity"]'],
    )
    return str(client.images.get(tag).id)


@contextlib.contextmanager
def busybox_container(
    client: docker.DockerClient, name: str | None = None, *, image: str = IMAGE
) -> Iterator[Any]:
    """Run a container of the busybox image with no network; remove it on exit."""
    name = name or f"o2test-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(
        image,
        ["sleep", "infinity"],
        name=name,
        detach=True,
        network_mode="none",
        labels={LABEL: "1"},
        init=True,  # reaps the watchdog children busybox `timeout` leaves behind
    )
    try:
        container.reload()
        if container.status != "running":
            raise RuntimeError(f"container {name} is {container.status}: {container.logs()!r}")
        yield container
    finally:
        container.remove(force=True)
