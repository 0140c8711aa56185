"""Cached builds on disk: locks, and removal of what a dead builder left.

The image and kernel builds share these: a build holds an ``fcntl`` lock while it works in a
temporary directory of its own; the next build removes a directory whose lock is free (its
builder died), after stopping the processes still working in it and unmounting what a killed
``debootstrap`` left mounted there, never across a mount point.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from ocfs2lab.errors import HostError, Ocfs2LabError
from ocfs2lab.report import Reporter, phase
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds a temporary build directory without a lock file must be old to count as stale.
STALE_UNLOCKED_AGE = 600.0


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if needed) for the block.

    Raises:
        HostError: The lock was not free within ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = Deadline(timeout)
        logged = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if deadline.expired:
                raise HostError(
                    f"{what}: lock {path} still held after {timeout:g} s",
                    hint="another build is running; wait for it or stop it",
                )
            if not logged:
                log.info("%s: waiting for another process holding %s", what, path)
                logged = True
            time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _unescape_mount(path: str) -> str:
    """Decode the octal escapes (``\\040`` for a space) of /proc/self/mountinfo."""
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and i + 4 <= len(path) and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mounts_under(directory: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points at or below ``directory``, deepest first."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    base = os.path.realpath(directory)
    found: list[Path] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = _unescape_mount(fields[4])
        if point == base or point.startswith(base.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def processes_using(directory: Path) -> list[int]:
    """Pids of processes whose command line, root, working directory or an open file lies in
    ``directory``.

    Used on a dead builder's temporary directory only: the path is unique to that build, so
    whatever refers to it (an orphaned debootstrap, dpkg chrooted into the target, mkfs, a
    provisioning QEMU) belongs to the lab.
    """
    base = os.path.realpath(directory)
    prefix = base.rstrip("/") + "/"
    mine = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        hit = base in cmdline
        for link in ("root", "cwd"):
            with contextlib.suppress(OSError):
                target = os.readlink(entry / link)
                hit = hit or target == base or target.startswith(prefix)
        if not hit:
            # Files held open: a machine's backing image is named only inside its overlay.
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd).startswith(prefix):
                            hit = True
                            break
        if hit:
            found.append(int(entry.name))
    return found


def kill_processes_using(directory: Path, rounds: int = 20) -> list[int]:
    """SIGKILL every process [`processes_using`][ocfs2lab.vm.cache.processes_using] finds, until
    none is left.

    Returns:
        The pids killed.
    """
    killed: list[int] = []
    for _ in range(rounds):
        pids = processes_using(directory)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.2)
    return killed


def remove_tree(directory: Path, local: LocalRunner | None = None) -> None:
    """Remove ``directory``, first unmounting anything mounted below it.

    A killed debootstrap can leave ``proc``/``sys`` mounted in its target; ``rmtree`` would
    descend into them. Nothing is removed while a mount remains.

    Raises:
        HostError: A mount below ``directory`` could not be unmounted.
    """
    if not directory.exists():
        return
    local = local or LocalRunner()
    for point in mounts_under(directory):
        log.warning("unmounting %s left by a dead build", point)
        local.run(["umount", "-l", str(point)], check=False, timeout=60)
    remaining = mounts_under(directory)
    if remaining:
        raise HostError(
            f"cannot remove {directory}: still mounted: {', '.join(map(str, remaining))}",
            hint="unmount these by hand, then retry",
        )
    shutil.rmtree(directory)


def remove_stale_builds(builds: Path, local: LocalRunner | None = None) -> list[Path]:
    """Remove temporary build directories whose builder is gone.

    A live builder holds the lock on ``.lock`` in its directory; a directory whose lock can
    be taken (or that has no lock file and is older than 10 minutes) is stale.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    if not builds.is_dir():
        return removed
    for tmp in sorted(builds.glob(".build-*")):
        if not tmp.is_dir():
            continue
        lock = tmp / ".lock"
        stale = False
        if lock.exists():
            with lock.open("a+") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    stale = True
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                except OSError:
                    stale = False
        else:
            stale = time.time() - tmp.stat().st_mtime > STALE_UNLOCKED_AGE
        if stale:
            log.warning("removing stale image build %s", tmp)
            killed = kill_processes_using(tmp)
            if killed:
                log.warning("killed processes of the dead build: %s", killed)
            remove_tree(tmp, local)
            removed.append(tmp)
    return removed


class PhaseError(Protocol):
    """An error class made from a build phase's name, a message and a hint."""

    def __call__(self, phase: str, message: str, *, hint: str | None = None) -> Exception:
        """The error for ``phase``."""
        ...


def run_phases(
    reporter: Reporter,
    steps: Sequence[tuple[str, Callable[[], None]]],
    error: type[Ocfs2LabError],
    make_error: PhaseError,
) -> dict[str, float]:
    """Run build steps as Reporter phases; a lab error in one becomes ``make_error(phase,
    ...)`` unless it is an ``error`` already.

    Returns:
        Seconds per phase.
    """
    durations: dict[str, float] = {}
    for name, step in steps:
        t0 = time.monotonic()
        with phase(reporter, name):
            try:
                step()
            except Ocfs2LabError as err:
                if isinstance(err, error):
                    raise
                raise make_error(name, str(err), hint=err.hint) from err
        durations[name] = round(time.monotonic() - t0, 1)
    return durations


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lock_path(directory: Path) -> Path:
    """The lock a build of ``directory`` holds: ``<parent>/<name>.lock``."""
    return directory.parent / f"{directory.name}.lock"


def remove_cached(directory: Path, local: LocalRunner | None = None) -> None:
    """Remove a cached build (image, kernel, work tree) and its lock file."""
    remove_tree(directory, local)
    lock_path(directory).unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build_once(
    final: Path,
    load: Callable[[], T | None],
    build: Callable[[Path], None],
    *,
    what: str,
    lock_timeout: float,
    local: LocalRunner,
    before: Callable[[], object] | None = None,
) -> T:
    """Build ``final`` once, atomically, whoever else tries at the same time.

    Under the lock ``<parent>/<name>.lock``: when ``load()`` finds the result (another process
    built it while this one waited) it is returned; else dead builders' directories are
    removed, ``before()`` runs, anything in the way at ``final`` is removed, and ``build``
    fills a fresh ``<parent>/.build-<name>-XXXX/`` (holding the lock on its ``.lock`` while
    it works), which is renamed to ``final`` only when ``build`` returns. On any error,
    Ctrl-C included, the processes still working in it are stopped and it is removed.

    Raises:
        HostError: The lock was not free in time, or ``load()`` finds nothing after the build.
    """
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock_path(final), timeout=lock_timeout, what=what):
        found = load()
        if found is not None:
            return found
        remove_stale_builds(parent, local)
        if before is not None:
            before()
        if final.exists():  # an incomplete or foreign directory in the way
            remove_tree(final, local)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=parent))
        with (tmp / ".lock").open("a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                build(tmp)
                (tmp / ".lock").unlink()
                tmp.rename(final)
                fsync_dir(parent)
            except BaseException:
                # Ctrl-C reaches only this process: stop the build's own children first.
                with contextlib.suppress(Exception):
                    kill_processes_using(tmp)
                    remove_tree(tmp, local)
                raise
    built = load()
    if built is None:
        raise HostError(f"{what}: {final} is incomplete after the build")
    return built


__all__ = [
    "STALE_UNLOCKED_AGE",
    "build_once",
    "file_lock",
    "file_sha256",
    "fsync_dir",
    "kill_processes_using",
    "lock_path",
    "mounts_under",
    "processes_using",
    "remove_cached",
    "remove_stale_builds",
    "remove_tree",
    "run_phases",
]
