"""Building the lab image: debootstrap, configure, node image, mkfs, provisioning boot.

:func:`build_image` makes a :class:`~ocfs2lab.vm.recipe.LabImage` from an
:class:`~ocfs2lab.vm.recipe.ImageRecipe` once and reuses it afterwards:

* images live in ``<cache>/images/<release>-<key>/`` (``root.img``, ``vmlinuz``,
  ``initrd.img``, ``manifest.json``), keyed by :meth:`ImageRecipe.key`;
* a build holds an ``fcntl`` lock on ``<cache>/images/<name>.lock``: a second builder of the
  same image waits and then reuses the result;
* a build works in ``<cache>/images/.build-<name>-XXXX/`` and renames it into place only
  when complete, so a crash or Ctrl-C leaves nothing that is later taken as good. Each
  build holds a lock on ``.lock`` inside its own temporary directory; a temporary directory
  whose lock can be taken belongs to a dead builder and is removed (after unmounting
  anything a killed debootstrap left mounted under it, never across a mount point).

Steps (each a Reporter phase):

1. ``debootstrap``: ``debootstrap --variant=minbase`` of the lab VM, packages cached in
   ``<cache>/debs/<release>-amd64``;
2. ``configure``: the guest configuration from ``ocfs2lab/vm/assets`` (fstab by label,
   networkd DHCP on the slirp NIC, sshd with the key from the kernel command line, units
   masked for a fast boot, a small initramfs), then the kernel and initramfs copied out;
3. ``node image``: a second minbase debootstrap, the Docker node image's root file system,
   tarred into the lab image with ``Dockerfile.ocfs2`` and the node scripts;
4. ``mkfs``: ``mkfs.ext4 -d rootfs -L ocfs2lab-root`` (no loop device, no mount);
5. ``provision``: one boot of the new image, writable: ``docker import`` of the node base,
   ``docker build`` of ``ocfs2-node:latest``, clean poweroff, ``e2fsck``.

Building needs root (debootstrap, chroot), ``debootstrap``, ``e2fsprogs``, ``qemu-utils``
and ``qemu-system-x86``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from ocfs2lab.errors import CommandError, HostError, Ocfs2LabError
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.qemu import QemuMachine, QemuSpec, reap_stale_machines
from ocfs2lab.vm.recipe import (
    NODE_ASSETS,
    NODE_BASE_IMAGE,
    NODE_IMAGE,
    ROOT_LABEL,
    VM_ASSETS,
    ImageRecipe,
    LabImage,
    cache_root,
)
from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)

#: Asset files installed into the lab root file system: (asset, destination, mode).
ASSET_INSTALL: tuple[tuple[str, str, int], ...] = (
    ("fstab", "etc/fstab", 0o644),
    ("hosts", "etc/hosts", 0o644),
    ("resolv.conf", "etc/resolv.conf", 0o644),
    ("10-ocfs2lab-slirp.network", "etc/systemd/network/10-ocfs2lab-slirp.network", 0o644),
    ("sshd-ocfs2lab.conf", "etc/ssh/sshd_config.d/ocfs2lab.conf", 0o644),
    ("ocfs2lab-authorized-keys", "usr/local/libexec/ocfs2lab-authorized-keys", 0o755),
    ("ssh.service", "etc/systemd/system/ssh.service", 0o644),
    ("ocfs2lab-ready.service", "etc/systemd/system/ocfs2lab-ready.service", 0o644),
    ("journald-ocfs2lab.conf", "etc/systemd/journald.conf.d/ocfs2lab.conf", 0o644),
    ("modprobe-ocfs2lab.conf", "etc/modprobe.d/ocfs2lab.conf", 0o644),
    ("modules-load-drbd.conf", "etc/modules-load.d/drbd.conf", 0o644),
    ("initramfs-ocfs2lab.conf", "etc/initramfs-tools/conf.d/ocfs2lab.conf", 0o644),
    ("initramfs-modules", "etc/initramfs-tools/modules", 0o644),
    ("initramfs-no-udev", "etc/initramfs-tools/scripts/init-top/udev", 0o755),
    ("initramfs-no-udev", "etc/initramfs-tools/scripts/init-bottom/udev", 0o755),
)
#: Asset listing unit changes (``enable|disable|mask|reenable <unit>``, ``mask-generator``).
UNITS_ASSET = "units"
#: The node image's Dockerfile (asset) and where the build context goes in the lab image.
DOCKERFILE_ASSET = "Dockerfile.ocfs2"
NODE_CONTEXT = "usr/share/ocfs2lab/node"
NODE_BASE_TAR = "var/lib/ocfs2lab/node-base.tar"

#: Host tools a build needs.
BUILD_TOOLS = (
    "debootstrap",
    "chroot",
    "mkfs.ext4",
    "e2fsck",
    "tar",
    "qemu-img",
    "qemu-system-x86_64",
)

#: Seconds a temporary build directory without a lock file must be old to count as stale.
STALE_UNLOCKED_AGE = 600.0


class ImageBuildError(Ocfs2LabError):
    """A lab image could not be built.

    Attributes:
        phase: The build phase that failed (``debootstrap``, ``configure``, ...).
    """

    def __init__(self, phase: str, message: str, *, hint: str | None = None) -> None:
        self.phase = phase
        super().__init__(f"image build, {phase}: {message}", hint=hint)


# -- locks and safe removal ------------------------------------------------------------------------
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
    """Pids of processes whose command line, root or working directory lies in ``directory``.

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
        if hit:
            found.append(int(entry.name))
    return found


def kill_processes_using(directory: Path, rounds: int = 20) -> list[int]:
    """SIGKILL every process :func:`processes_using` finds, until none is left.

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


def remove_stale_builds(images: Path, local: LocalRunner | None = None) -> list[Path]:
    """Remove temporary build directories whose builder is gone.

    A live builder holds the lock on ``.lock`` in its directory; a directory whose lock can
    be taken (or that has no lock file and is older than 10 minutes) is stale.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    if not images.is_dir():
        return removed
    for tmp in sorted(images.glob(".build-*")):
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


# -- finding images ------------------------------------------------------------------------------
def images_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/images``."""
    return (cache_dir if cache_dir is not None else cache_root()) / "images"


def find_image(
    recipe: ImageRecipe | None = None, *, cache_dir: Path | None = None
) -> LabImage | None:
    """The complete cached image of ``recipe``, or ``None`` when it was not built yet."""
    recipe = recipe or ImageRecipe()
    return _complete_image(images_dir(cache_dir) / recipe.short_name, recipe)


def _complete_image(directory: Path, recipe: ImageRecipe) -> LabImage | None:
    manifest = directory / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != recipe.key():
        return None
    image = LabImage.in_directory(directory, recipe)
    return image if image.exists() else None


# -- the build ---------------------------------------------------------------------------------
def build_image(
    recipe: ImageRecipe | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    local: LocalRunner | None = None,
    lock_timeout: float = 3 * 3600.0,
) -> LabImage:
    """The lab image of ``recipe``: from the cache, or built now (minutes) and cached.

    Args:
        recipe: What to build (the default recipe when ``None``).
        cache_dir: Cache directory (default: ``$OCFS2LAB_CACHE``, ``$XDG_CACHE_HOME/ocfs2lab``
            or ``~/.cache/ocfs2lab``).
        reporter: Receives the phases ``debootstrap``, ``configure``, ``node image``,
            ``mkfs``, ``provision``.
        local: Runs the host commands.
        lock_timeout: Seconds to wait for another process building the same image.

    Returns:
        The image (its files are in ``<cache>/images/<release>-<key>/``).

    Raises:
        HostError: Not root, a tool is missing, or another build holds the lock too long.
        ImageBuildError: A build step failed (nothing is left in the cache).
    """
    recipe = recipe or ImageRecipe()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    images = images_dir(root)
    final = images / recipe.short_name
    found = _complete_image(final, recipe)
    if found is not None:
        log.info("lab image %s: cached", final)
        return found
    _check_host()
    reporter = reporter or LogReporter()
    local = local or LocalRunner()
    images.mkdir(parents=True, exist_ok=True)
    with file_lock(images / f"{recipe.short_name}.lock", timeout=lock_timeout, what="image build"):
        found = _complete_image(final, recipe)
        if found is not None:
            return found  # another process built it while we waited
        remove_stale_builds(images, local)
        reap_stale_machines(root / "run")
        if final.exists():  # an incomplete or foreign directory in the way
            remove_tree(final, local)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{recipe.short_name}-", dir=images))
        with (tmp / ".lock").open("a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                _Build(recipe, tmp, root, reporter, local).run()
                (tmp / ".lock").unlink()
                tmp.rename(final)
                _fsync_dir(images)
            except BaseException:
                # Ctrl-C reaches only this process: stop the build's own children first.
                with contextlib.suppress(Exception):
                    kill_processes_using(tmp)
                    remove_tree(tmp, local)
                raise
    log.info("lab image %s: built", final)
    image = _complete_image(final, recipe)
    if image is None:
        raise ImageBuildError("finish", f"{final} is incomplete after the build")
    return image


def _check_host() -> None:
    if os.geteuid() != 0:
        raise HostError(
            "building the lab image needs root (debootstrap, chroot)",
            hint="run the build once as root; later runs reuse the cached image",
        )
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing:
        raise HostError(
            f"building the lab image needs: {', '.join(missing)}",
            hint="apt-get install debootstrap e2fsprogs qemu-utils qemu-system-x86",
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@attrs.define
class _Build:
    recipe: ImageRecipe
    tmp: Path
    cache: Path
    reporter: Reporter
    local: LocalRunner
    durations: dict[str, float] = attrs.field(factory=dict)
    kernel_version: str = ""

    @property
    def rootfs(self) -> Path:
        return self.tmp / "rootfs"

    @property
    def node_rootfs(self) -> Path:
        return self.tmp / "node-rootfs"

    @property
    def debs(self) -> Path:
        return self.cache / "debs" / f"{self.recipe.release}-amd64"

    def run(self) -> None:
        started = time.monotonic()
        for name, step in (
            ("debootstrap", self.debootstrap),
            ("configure", self.configure),
            ("node image", self.node_image),
            ("mkfs", self.mkfs),
            ("provision", self.provision),
        ):
            t0 = time.monotonic()
            with phase(self.reporter, name):
                try:
                    step()
                except Ocfs2LabError as err:
                    if isinstance(err, ImageBuildError):
                        raise
                    raise ImageBuildError(name, str(err), hint=err.hint) from err
            self.durations[name] = round(time.monotonic() - t0, 1)
        self.write_manifest(time.monotonic() - started)

    # -- 1 ---------------------------------------------------------------------------------
    def _debootstrap(self, target: Path, packages: tuple[str, ...], timeout: float) -> None:
        self.debs.mkdir(parents=True, exist_ok=True)
        argv = [
            "debootstrap",
            "--variant=minbase",
            f"--cache-dir={self.debs}",
            f"--include={','.join(packages)}",
            self.recipe.release,
            str(target),
            self.recipe.mirror,
        ]
        with file_lock(self.debs.with_suffix(".lock"), timeout=timeout, what="debootstrap"):
            result = self.local.run(argv, check=False, timeout=timeout)
        if not result.ok:
            logfile = target / "debootstrap" / "debootstrap.log"
            detail = ""
            with contextlib.suppress(OSError):
                detail = logfile.read_text(errors="replace")[-1500:]
            raise ImageBuildError(
                "debootstrap",
                f"`{result.command_line}` exited with {result.exit_code}"
                f"{' (timed out)' if result.timed_out else ''}: "
                f"{(result.stderr or result.stdout).strip()[-1500:]}\n{detail}",
                hint="check the mirror is reachable and the package names exist in the release",
            )

    def debootstrap(self) -> None:
        self._debootstrap(self.rootfs, self.recipe.packages, 3600)

    # -- 2 ---------------------------------------------------------------------------------
    def chroot(self, *argv: str, timeout: float = 300) -> None:
        self.local.run(
            ["chroot", str(self.rootfs), *argv],
            timeout=timeout,
            env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "SYSTEMD_OFFLINE": "1"},
        )

    def configure(self) -> None:
        root = self.rootfs
        for asset, dest, mode in ASSET_INSTALL:
            target = root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            shutil.copyfile(VM_ASSETS / asset, target)
            target.chmod(mode)
        (root / "etc" / "hostname").write_text("ocfs2lab\n")
        # Empty: each boot makes its own machine id (clones of one image must not share it).
        # systemd falls back to D-Bus's copy when /etc/machine-id is empty: make that a link.
        (root / "etc" / "machine-id").write_text("")
        dbus_id = root / "var" / "lib" / "dbus" / "machine-id"
        dbus_id.parent.mkdir(parents=True, exist_ok=True)
        dbus_id.unlink(missing_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
        self.apply_units()
        # Package caches: the debs are in <cache>/debs, the lists are stale anyway.
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"):
            for path in root.glob(pattern):
                path.unlink()
        self.chroot("update-initramfs", "-u", "-k", "all", timeout=900)
        kernels = sorted((root / "boot").glob("vmlinuz-*"))
        if len(kernels) != 1:
            raise ImageBuildError("configure", f"expected one kernel in /boot, found {kernels}")
        self.kernel_version = kernels[0].name.removeprefix("vmlinuz-")
        shutil.copyfile(kernels[0], self.tmp / "vmlinuz")
        shutil.copyfile(
            root / "boot" / f"initrd.img-{self.kernel_version}", self.tmp / "initrd.img"
        )

    def apply_units(self) -> None:
        """Apply the ``units`` asset: consecutive lines with the same action in one call."""
        batches: list[tuple[str, list[str]]] = []
        for raw in (VM_ASSETS / UNITS_ASSET).read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            action, _, unit = line.partition(" ")
            unit = unit.strip()
            if (
                action not in {"enable", "disable", "mask", "reenable", "mask-generator"}
                or not unit
            ):
                raise ImageBuildError("configure", f"bad line in the units asset: {raw!r}")
            if batches and batches[-1][0] == action:
                batches[-1][1].append(unit)
            else:
                batches.append((action, [unit]))
        for action, units in batches:
            if action == "mask-generator":
                gen_dir = self.rootfs / "etc" / "systemd" / "system-generators"
                gen_dir.mkdir(parents=True, exist_ok=True)
                for unit in units:
                    link = gen_dir / unit
                    link.unlink(missing_ok=True)
                    link.symlink_to("/dev/null")
            else:
                self.chroot("systemctl", action, *units)

    # -- 3 ---------------------------------------------------------------------------------
    def node_image(self) -> None:
        node = self.node_rootfs
        self._debootstrap(node, self.recipe.node_packages, 3600)
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"):
            for path in node.glob(pattern):
                path.unlink()
        tar = self.rootfs / NODE_BASE_TAR
        tar.parent.mkdir(parents=True, exist_ok=True)
        self.local.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(node), "-cf", str(tar), "."],
            timeout=900,
        )
        remove_tree(node, self.local)
        context = self.rootfs / NODE_CONTEXT
        scripts = context / "scripts"
        scripts.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(VM_ASSETS / DOCKERFILE_ASSET, context / DOCKERFILE_ASSET)
        if NODE_ASSETS.is_dir():
            for path in sorted(NODE_ASSETS.iterdir()):
                if path.is_file():
                    target = scripts / path.name
                    shutil.copyfile(path, target)
                    executable = path.suffix in {".sh", ".py"} or os.access(path, os.X_OK)
                    target.chmod(0o755 if executable else 0o644)

    # -- 4 ---------------------------------------------------------------------------------
    def mkfs(self) -> None:
        image = self.tmp / "root.img"
        self.local.run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-d",
                str(self.rootfs),
                "-L",
                ROOT_LABEL,
                "-E",
                "root_owner=0:0",
                "-m",
                "1",
                str(image),
                f"{self.recipe.disk_size_mib}M",
            ],
            timeout=1800,
        )
        remove_tree(self.rootfs, self.local)

    # -- 5 ---------------------------------------------------------------------------------
    def provision(self) -> None:
        image = LabImage.in_directory(self.tmp, self.recipe)
        spec = QemuSpec(image=image, hostname="provision", write_base=True)
        logs = self.tmp / "provision-logs"
        with QemuMachine(
            spec,
            log_dir=logs,
            reporter=self.reporter,
            local=self.local,
            work_root=self.cache / "run",
        ) as vm:
            run = vm.runner.run
            run(["docker", "import", f"/{NODE_BASE_TAR}", NODE_BASE_IMAGE], timeout=1800)
            run(
                [
                    "docker",
                    "build",
                    "-q",
                    "-t",
                    NODE_IMAGE,
                    "-f",
                    f"/{NODE_CONTEXT}/{DOCKERFILE_ASSET}",
                    f"/{NODE_CONTEXT}",
                ],
                timeout=1800,
            )
            run(["docker", "image", "inspect", "--format", "{{.Id}}", NODE_IMAGE], timeout=120)
            run(["rm", "-f", f"/{NODE_BASE_TAR}"], timeout=60)
            run(
                ["systemctl", "stop", "docker.socket", "docker.service", "containerd.service"],
                timeout=300,
            )
            # The machine id written by this boot must not be inherited by every clone.
            run(["truncate", "-s", "0", "/etc/machine-id"], timeout=30)
            run(["ln", "-sfn", "/etc/machine-id", "/var/lib/dbus/machine-id"], timeout=30)
            run(["fstrim", "/"], check=False, timeout=300)
            run(["sync"], timeout=300)
        # The console log of the provisioning boot stays with the image, for reference.
        for path in logs.glob("*.console.log"):
            shutil.copyfile(path, self.tmp / "provision.console.log")
        shutil.rmtree(logs, ignore_errors=True)
        result = self.local.run(
            ["e2fsck", "-f", "-y", str(image.root_disk)], check=False, timeout=900
        )
        if result.exit_code not in (0, 1):
            raise CommandError(
                f"e2fsck of the provisioned image exited with {result.exit_code}: "
                f"{result.stdout[-800:]}",
                result,
            )

    def write_manifest(self, total: float) -> None:
        manifest = {
            "key": self.recipe.key(),
            "recipe": attrs.asdict(self.recipe),
            "kernel_version": self.kernel_version,
            "node_image": NODE_IMAGE,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(total, 1),
            "phase_seconds": self.durations,
        }
        root_disk = self.tmp / "root.img"
        for path in (root_disk, self.tmp / "vmlinuz", self.tmp / "initrd.img"):
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        root_disk.chmod(0o444)
        _write_synced(self.tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        _fsync_dir(self.tmp)


def _write_synced(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def prune_images(
    keep: Iterable[ImageRecipe] = (),
    *,
    cache_dir: Path | None = None,
    local: LocalRunner | None = None,
) -> list[Path]:
    """Remove cached images other than those of ``keep`` (old keys pile up as recipes and
    assets change). An image a running process still uses (a machine booted from it) is
    kept.

    Returns:
        The image directories removed.
    """
    images = images_dir(cache_dir)
    wanted = {recipe.short_name for recipe in keep}
    removed: list[Path] = []
    if not images.is_dir():
        return removed
    for directory in sorted(images.iterdir()):
        if not directory.is_dir() or directory.name.startswith(".") or directory.name in wanted:
            continue
        if not (directory / "manifest.json").exists() or processes_using(directory):
            continue
        log.info("removing cached image %s", directory)
        remove_tree(directory, local)
        (images / f"{directory.name}.lock").unlink(missing_ok=True)
        removed.append(directory)
    return removed


def read_manifest(image: LabImage) -> dict[str, object]:
    """The ``manifest.json`` of a built image (recipe, key, kernel version, build times)."""
    data: dict[str, object] = json.loads((image.directory / "manifest.json").read_text())
    return data


__all__ = [
    "ImageBuildError",
    "build_image",
    "file_lock",
    "find_image",
    "images_dir",
    "mounts_under",
    "prune_images",
    "read_manifest",
    "remove_stale_builds",
    "remove_tree",
]
