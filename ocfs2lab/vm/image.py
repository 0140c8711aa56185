"""Building the lab image: debootstrap, configure, node image, mkfs, provisioning boot.

[`build_image`][ocfs2lab.vm.image.build_image] makes a [`LabImage`][ocfs2lab.vm.recipe.LabImage]
from an
[`ImageRecipe`][ocfs2lab.vm.recipe.ImageRecipe] once and reuses it afterwards:

* images live in ``<cache>/images/<release>-<key>/`` (``root.img``, ``vmlinuz``,
  ``initrd.img``, ``manifest.json``), keyed by
  [`ImageRecipe.key`][ocfs2lab.vm.recipe.ImageRecipe.key];
* a build holds an ``fcntl`` lock on ``<cache>/images/<name>.lock``: a second builder of the
  same image waits and then reuses the result;
* a build works in ``<cache>/images/.build-<name>-XXXX/`` and renames it into place only
  when complete, so a crash or Ctrl-C leaves nothing that is later taken as good. Each
  build holds a lock on ``.lock`` inside its own temporary directory; a temporary directory
  whose lock can be taken belongs to a dead builder and is removed (after unmounting
  anything a killed debootstrap left mounted under it, never across a mount point).

The lab kernel ([`ocfs2lab.vm.kernel`][ocfs2lab.vm.kernel]), when the recipe has one and it is not
cached
yet, is compiled in a background thread meanwhile: debootstrap mostly waits on the mirror and
the disk, the compile on the CPUs. ``configure`` waits for it.

Steps (each a Reporter phase):

1. ``debootstrap``: ``debootstrap --variant=minbase`` of the lab VM, packages cached in
   ``<cache>/debs/<release>-amd64``;
2. ``configure``: the guest configuration from ``ocfs2lab/vm/assets`` (fstab by label,
   networkd DHCP on the slirp NIC, sshd with the key from the kernel command line, units
   masked for a fast boot, a small initramfs), the lab kernel and its modules installed (or
   Debian's, from the package), then the kernel and initramfs copied out;
3. ``node image``: a second minbase debootstrap, the Docker node image's root file system,
   tarred into the lab image with ``Dockerfile.ocfs2``, the node scripts and the coverage
   probe ``o2probe`` (compiled with gcov on this host, its notes kept in ``tools-gcov/``);
4. ``mkfs``: ``mkfs.ext4 -d rootfs -L ocfs2lab-root`` (no loop device, no mount);
5. ``provision``: one boot of the new image, writable: ``docker import`` of the node base,
   ``docker build`` of ``ocfs2-node:latest``, clean poweroff, ``e2fsck``.

Building needs root (debootstrap, chroot), ``debootstrap``, ``e2fsprogs``, ``qemu-utils``
and ``qemu-system-x86``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import attrs

from ocfs2lab.errors import CommandError, HostError, ImageBuildError, KernelBuildError
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.cache import (
    build_once,
    file_lock,
    fsync_dir,
    processes_using,
    remove_tree,
    run_phases,
)
from ocfs2lab.vm.kernel import KernelBuild, build_kernel, find_kernel
from ocfs2lab.vm.machine import QemuMachine
from ocfs2lab.vm.ownership import reap_stale_machines
from ocfs2lab.vm.recipe import (
    MODULES_LABEL,
    NODE_ASSETS,
    NODE_BASE_IMAGE,
    NODE_IMAGE,
    PROBE_ASSETS,
    PROBE_PROGRAM,
    PROBE_SOURCE,
    ROOT_LABEL,
    TOOLS_GCOV_DIR,
    VM_ASSETS,
    ImageRecipe,
    KernelRecipe,
    LabImage,
    cache_root,
)
from ocfs2lab.vm.spec import QemuSpec

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
#: The fstab line of an image that boots lab kernels: their modules disk, read-only.
#: Not ``nofail``: local-fs.target (and so sshd, and the lab's readiness mark) waits for it;
#: with ``nofail`` a loaded host saw ssh answer before the modules were there.
MODULES_FSTAB_LINE = (
    "# ocfs2lab: the lab kernel's modules, on their own disk (any lab kernel boots this image)\n"
    f"LABEL={MODULES_LABEL}  /usr/lib/modules  ext4  ro,x-systemd.device-timeout=120s  0  0\n"
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
    "gcc",
)


# -- finding images ------------------------------------------------------------------------------
def images_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/images``."""
    return (cache_dir if cache_dir is not None else cache_root()) / "images"


def find_image(
    recipe: ImageRecipe | None = None, *, cache_dir: Path | None = None
) -> LabImage | None:
    """The complete cached image of ``recipe`` with its kernel, or ``None`` when the root
    file system or the recipe's lab kernel was not built yet."""
    recipe = recipe or ImageRecipe()
    root = _complete_image(images_dir(cache_dir) / recipe.short_name, recipe)
    if root is None or recipe.kernel is None:
        return root
    kernel = find_kernel(recipe.kernel, cache_dir=cache_dir)
    return None if kernel is None else with_kernel(root, kernel)


def with_kernel(image: LabImage, kernel: KernelBuild) -> LabImage:
    """``image``'s root file system booting the lab kernel ``kernel``."""
    provenance = dict(kernel.provenance)
    provenance.setdefault("release", kernel.release)
    return image.with_kernel(kernel.bzimage, kernel.modules_disk, provenance)


def _complete_image(directory: Path, recipe: ImageRecipe) -> LabImage | None:
    """The built root file system of ``recipe`` in ``directory`` (for a lab kernel recipe,
    still without its kernel: [`with_kernel`][ocfs2lab.vm.image.with_kernel] adds it)."""
    manifest = directory / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != recipe.key():
        return None
    image = LabImage.in_directory(directory, recipe)
    if recipe.kernel is not None:
        return image if image.root_disk.is_file() else None
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
        if recipe.kernel is None:
            return found
        kernel = build_kernel(recipe.kernel, cache_dir=root, reporter=reporter, local=local)
        return with_kernel(found, kernel)
    _check_host()
    reporter = reporter or LogReporter()
    local = local or LocalRunner()
    with _KernelInBackground(recipe.kernel, root, reporter, local) as background:

        def build(tmp: Path) -> None:
            _Build(recipe, tmp, root, reporter, local, background).run()

        image = build_once(
            final,
            lambda: _complete_image(final, recipe),
            build,
            what="image build",
            lock_timeout=lock_timeout,
            local=local,
            before=lambda: reap_stale_machines(root / "run"),
        )
        built = background.result()
    log.info("lab image %s: ready", final)
    return image if built is None else with_kernel(image, built)


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
            hint="apt-get install debootstrap e2fsprogs qemu-utils qemu-system-x86 gcc libc6-dev",
        )


def gcc_version(local: LocalRunner | None = None) -> str:
    """``gcc -dumpfullversion`` of this host (``12.2.0``)."""
    return (local or LocalRunner()).run(["gcc", "-dumpfullversion"], timeout=60).stdout.strip()


def compile_probe(directory: Path, local: LocalRunner | None = None) -> Path:
    """Compile the coverage probe ``o2probe`` (gcov, static) in ``directory`` (made here).

    It is compiled on this host, not in a guest, so its ``.gcno`` notes match this host's
    ``gcov``, which reads them when reports are made. ``directory`` keeps the source, the
    notes and the program.

    Returns:
        The program.
    """
    local = local or LocalRunner()
    directory.mkdir(parents=True)
    shutil.copyfile(PROBE_ASSETS / PROBE_SOURCE, directory / PROBE_SOURCE)
    gcc = ["gcc", "-O0", "-g", "-Wall", "-Wextra", "--coverage"]
    obj = PROBE_SOURCE.replace(".c", ".o")
    inside = ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(directory)]
    local.run([*inside, *gcc, "-c", PROBE_SOURCE, "-o", obj], timeout=300)
    local.run([*inside, *gcc, "-static", "-o", PROBE_PROGRAM, obj], timeout=300)
    (directory / obj).unlink()
    return directory / PROBE_PROGRAM


class _KernelInBackground:
    """The lab kernel, built in a thread while the image's debootstrap downloads (a kernel
    compile keeps the CPUs busy, debootstrap mostly waits on the mirror and the disk).

    `result` waits for it. Leaving the block early (an error, Ctrl-C) cancels a
    compile still running: ``make`` is stopped by its process group, the kernel's temporary
    directory removed.
    """

    def __init__(
        self,
        recipe: KernelRecipe | None,
        cache: Path,
        reporter: Reporter,
        local: LocalRunner,
    ) -> None:
        self.recipe = recipe
        self.cache = cache
        self.reporter = reporter
        self.local = local
        self.cancel = threading.Event()
        # Set when the build thread has finished. Waited on instead of Thread.join: on Python
        # 3.11 a Ctrl-C that interrupts join() marks the thread as stopped while it still
        # runs (bpo-45274), and the compile it runs would be left behind.
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        self.built: KernelBuild | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> _KernelInBackground:
        if self.recipe is None:
            return self
        self.built = find_kernel(self.recipe, cache_dir=self.cache)
        if self.built is None:
            self.thread = threading.Thread(target=self._build, name="lab-kernel", daemon=True)
            self.thread.start()
        return self

    def _build(self) -> None:
        assert self.recipe is not None
        try:
            self.built = build_kernel(
                self.recipe,
                cache_dir=self.cache,
                reporter=self.reporter,
                local=self.local,
                cancel=self.cancel,
            )
        except BaseException as err:  # handed to the image build's thread by result()
            self.error = err
        finally:
            self.done.set()

    def result(self) -> KernelBuild | None:
        """The kernel (``None``: the recipe boots Debian's); waits for a build running."""
        if self.thread is not None:
            self.done.wait()
        if self.error is not None:
            raise self.error
        return self.built

    def __exit__(self, *exc: object) -> None:
        if self.thread is not None and not self.done.is_set():
            self.cancel.set()
            while not self.done.wait(1.0):
                pass


@attrs.define
class _Build:
    recipe: ImageRecipe
    tmp: Path
    cache: Path
    reporter: Reporter
    local: LocalRunner
    kernel: _KernelInBackground | None = None
    durations: dict[str, float] = attrs.field(factory=dict)
    kernel_version: str = ""
    kernel_dir: str | None = None

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
        steps = (
            ("debootstrap", self.debootstrap),
            ("configure", self.configure),
            ("node image", self.node_image),
            ("mkfs", self.mkfs),
            ("provision", self.provision),
        )
        self.durations = run_phases(self.reporter, steps, ImageBuildError, ImageBuildError)
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
        if self.recipe.kernel is not None:
            # A lab kernel travels apart from the root file system: its modules disk is
            # mounted on /usr/lib/modules, so this image boots any lab kernel.
            with (root / "etc" / "fstab").open("a") as fstab:
                fstab.write(MODULES_FSTAB_LINE)
            (root / "usr" / "lib" / "modules").mkdir(parents=True, exist_ok=True)
            return
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
    def probe(self) -> Path:
        """Compile the coverage probe into the image's ``tools-gcov`` and ``/usr/local/bin``."""
        binary = compile_probe(self.tmp / TOOLS_GCOV_DIR, self.local)
        target = self.rootfs / "usr" / "local" / "bin" / PROBE_PROGRAM
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(binary, target)
        target.chmod(0o755)
        return binary

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
        probe = self.probe()
        shutil.copyfile(probe, scripts / PROBE_PROGRAM)
        (scripts / PROBE_PROGRAM).chmod(0o755)
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
        kernel = self.kernel.result() if self.kernel is not None else None
        if kernel is not None:
            image = with_kernel(image, kernel)
            self.kernel_dir = str(kernel.directory)
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
            "kernel_version": self.kernel_version or None,
            "kernel": "debian" if self.recipe.kernel is None else "lab",
            "provisioned_with": self.kernel_dir,
            "tools_gcov": {
                "directory": TOOLS_GCOV_DIR,
                "build_root": str(self.tmp / TOOLS_GCOV_DIR),
                "gcc_version": gcc_version(self.local),
            },
            "node_image": NODE_IMAGE,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(total, 1),
            "phase_seconds": self.durations,
        }
        root_disk = self.tmp / "root.img"
        for path in (root_disk, self.tmp / "vmlinuz", self.tmp / "initrd.img"):
            if not path.exists():
                continue
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        root_disk.chmod(0o444)
        _write_synced(self.tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        fsync_dir(self.tmp)


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
    "KernelBuildError",
    "build_image",
    "compile_probe",
    "find_image",
    "gcc_version",
    "images_dir",
    "prune_images",
    "read_manifest",
    "with_kernel",
]
