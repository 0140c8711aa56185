"""The lab kernel: built from Debian's ``linux-source`` package with gcov, once, and cached.

A :class:`KernelRecipe` says what to build; :func:`build_kernel` builds it (about 9 minutes
on two cores) or finds it in ``<cache>/kernels/<series>-<key>/``, and returns a
:class:`KernelBuild`:

* ``bzImage``, ``System.map`` and ``config`` of the kernel;
* ``modules/lib/modules/<release>/``: its modules (stripped), ready to copy into a root file
  system;
* ``gcov/``: what coverage reports need from the build tree: the sources (``.c``, ``.h``) and
  the gcov notes (``.gcno``) of every directory the kernel profiles (``fs/ocfs2`` with all its
  subdirectories and ``drivers/block/drbd`` by default), at the paths they had in the tree;
* ``manifest.json``: the recipe, the kernel release, the compiler that built it (gcov data
  can only be read by the ``gcov`` of the same GCC) and the absolute path of the build tree
  (the guest's ``/sys/kernel/debug/gcov`` mirrors it).

The configuration is ``x86_64_defconfig`` + ``kvm_guest.config`` + the lab's fragment
(``ocfs2lab/vm/assets/kernel-ocfs2lab.config``), and ``GCOV_PROFILE := y`` is appended to the
Makefile of every profiled directory, so only that code carries counters. Every option of the
fragment is checked after ``make olddefconfig``: one that did not stick fails the build with
its name.

The build runs like the image build: under a file lock, in a temporary directory renamed
into place when complete; a dead builder's directory (and its orphaned ``make``) is removed by
the next build. ``make`` is the one long process here; it is started by
:func:`~ocfs2lab.runner.process.spawn` and stopped by its own process group on error or
Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import attrs
from attrs import field, frozen

from ocfs2lab.errors import HostError, Ocfs2LabError
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.process import spawn
from ocfs2lab.vm.cache import build_once, remove_tree, run_phases
from ocfs2lab.vm.recipe import FRAGMENT_ASSET, KernelRecipe, cache_root
from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)

#: Host tools a kernel build needs, and the Debian packages that bring them.
BUILD_TOOLS = {
    "make": "make",
    "gcc": "gcc",
    "gcov": "gcc",
    "bc": "bc",
    "bison": "bison",
    "flex": "flex",
    "xz": "xz-utils",
    "depmod": "kmod",
    "cpio": "cpio",
}
#: Headers the build needs (checked by path, as ``libelf-dev``/``libssl-dev`` bring them).
BUILD_HEADERS = {
    "/usr/include/libelf.h": "libelf-dev",
    "/usr/include/openssl/ssl.h": "libssl-dev",
}
#: Seconds a compile may take before the build gives up.
COMPILE_TIMEOUT = 4 * 3600.0

_CONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_LINE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_COMPILE_LINE = re.compile(r"^\s+CC(?: \[M\])?\s")


class KernelBuildError(Ocfs2LabError):
    """The lab kernel could not be built.

    Attributes:
        phase: The build phase that failed (``source``, ``configure``, ``compile``, ...).
    """

    def __init__(self, phase: str, message: str, *, hint: str | None = None) -> None:
        self.phase = phase
        super().__init__(f"kernel build, {phase}: {message}", hint=hint)


def parse_config(text: str) -> dict[str, str]:
    """The options of a kernel ``.config`` (or fragment): ``{name: value}``; ``n`` for unset."""
    options: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = _CONFIG_LINE.match(line)
        if match:
            options[match.group(1)] = match.group(2)
            continue
        unset = _UNSET_LINE.match(line)
        if unset:
            options[unset.group(1)] = "n"
    return options


def config_mismatches(wanted: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Options of ``wanted`` that ``actual`` does not have as asked, in words.

    A module asked for (``m``) may end up built in (``y``): something built in selected it.
    """
    problems: list[str] = []
    for name, value in wanted.items():
        got = actual.get(name, "n")
        if got == value or (value == "m" and got == "y"):
            continue
        problems.append(f"{name}: asked {value}, got {got}")
    return problems


@frozen
class KernelBuild:
    """A built lab kernel (read-only).

    Attributes:
        directory: Where its files are.
        release: ``uname -r`` of the kernel.
        build_root: Absolute path of the build tree when it was compiled (the guest's
            ``/sys/kernel/debug/gcov`` mirrors this path).
        gcc_version: ``gcc -dumpfullversion`` of the compiler that built it.
        gcov_dirs: The profiled directories.
    """

    directory: Path = field(converter=Path)
    release: str
    build_root: str
    gcc_version: str
    gcov_dirs: tuple[str, ...]

    @property
    def bzimage(self) -> Path:
        """The kernel image to boot."""
        return self.directory / "bzImage"

    @property
    def modules_root(self) -> Path:
        """A root holding ``lib/modules/<release>/``."""
        return self.directory / "modules"

    @property
    def gcov_tree(self) -> Path:
        """Sources and ``.gcno`` files of the profiled directories, at their tree paths."""
        return self.directory / "gcov"

    @classmethod
    def load(cls, directory: Path, recipe: KernelRecipe | None = None) -> KernelBuild | None:
        """The complete kernel in ``directory`` (of ``recipe`` when given), else ``None``."""
        try:
            data = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if recipe is not None and data.get("key") != recipe.key():
            return None
        try:
            build = cls(
                directory=directory,
                release=str(data["release"]),
                build_root=str(data["build_root"]),
                gcc_version=str(data["gcc_version"]),
                gcov_dirs=tuple(data["gcov_dirs"]),
            )
        except (KeyError, TypeError):
            return None
        complete = (
            build.bzimage.is_file()
            and (build.modules_root / "lib" / "modules" / build.release).is_dir()
        )
        return build if complete else None


def kernels_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/kernels``."""
    return (cache_dir if cache_dir is not None else cache_root()) / "kernels"


def find_kernel(
    recipe: KernelRecipe | None = None, *, cache_dir: Path | None = None
) -> KernelBuild | None:
    """The cached kernel of ``recipe``, or ``None`` when it was not built yet."""
    recipe = recipe or KernelRecipe()
    return KernelBuild.load(kernels_dir(cache_dir) / recipe.short_name, recipe)


def kernel_build_missing() -> list[str]:
    """The Debian packages a kernel build lacks on this machine."""
    return sorted(
        {pkg for tool, pkg in BUILD_TOOLS.items() if shutil.which(tool) is None}
        | {pkg for path, pkg in BUILD_HEADERS.items() if not Path(path).exists()}
    )


def check_build_host() -> None:
    """Raise :class:`HostError` naming the packages a kernel build lacks here."""
    missing = kernel_build_missing()
    if missing:
        raise HostError(
            f"building the lab kernel needs the packages: {', '.join(missing)}",
            hint=f"apt-get install {' '.join(missing)} (scripts/setup.sh installs them)",
        )


def build_kernel(
    recipe: KernelRecipe | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    local: LocalRunner | None = None,
    lock_timeout: float = 5 * 3600.0,
    cancel: threading.Event | None = None,
) -> KernelBuild:
    """The lab kernel of ``recipe``: from the cache, or built now (about 9 min) and cached.

    Args:
        recipe: What to build (the trixie kernel with the default gcov directories).
        cache_dir: Cache directory (as for :func:`~ocfs2lab.vm.image.build_image`).
        reporter: Receives the phases ``kernel source``, ``kernel configure``, ``kernel
            compile`` (advancing with the number of files compiled) and ``kernel install``.
        local: Runs the host commands.
        lock_timeout: Seconds to wait for another process building the same kernel.
        cancel: Set by another thread to stop a compile under way (it then raises).

    Raises:
        HostError: A build tool is missing, or another build holds the lock too long.
        KernelBuildError: A build step failed (nothing is left in the cache).
    """
    recipe = recipe or KernelRecipe()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    kernels = kernels_dir(root)
    final = kernels / recipe.short_name
    found = KernelBuild.load(final, recipe)
    if found is not None:
        log.info("lab kernel %s: cached", final)
        return found
    check_build_host()
    reporter = reporter or LogReporter()
    local = local or LocalRunner()

    def build(tmp: Path) -> None:
        _KernelBuild(recipe, tmp, root, reporter, local, cancel or threading.Event()).run()

    built = build_once(
        final,
        lambda: KernelBuild.load(final, recipe),
        build,
        what="kernel build",
        lock_timeout=lock_timeout,
        local=local,
    )
    log.info("lab kernel %s: ready (%s)", final, built.release)
    return built


@attrs.define
class _KernelBuild:
    recipe: KernelRecipe
    tmp: Path
    cache: Path
    reporter: Reporter
    local: LocalRunner
    cancel: threading.Event
    durations: dict[str, float] = attrs.field(factory=dict)
    release: str = ""
    compiled: int = 0

    @property
    def tree(self) -> Path:
        return self.tmp / "linux"

    def run(self) -> None:
        started = time.monotonic()
        steps = (
            ("kernel source", self.source),
            ("kernel configure", self.configure),
            ("kernel compile", self.compile),
            ("kernel install", self.install),
        )
        self.durations = run_phases(self.reporter, steps, KernelBuildError, KernelBuildError)
        self.write_manifest(time.monotonic() - started)

    # -- source ----------------------------------------------------------------------------
    def tarball(self) -> Path:
        """``/usr/src/<package>.tar.xz`` when installed, else from the package's .deb."""
        package = self.recipe.source_package
        installed = Path("/usr/src") / f"{package}.tar.xz"
        if installed.is_file():
            return installed
        debs = self.cache / "debs" / "kernel"
        debs.mkdir(parents=True, exist_ok=True)
        cached = debs / f"{package}.tar.xz"
        if cached.is_file():
            return cached
        with tempfile.TemporaryDirectory(dir=debs) as scratch:
            result = self.local.run(
                ["sh", "-c", 'cd "$1" && apt-get download "$2"', "sh", scratch, package],
                check=False,
                timeout=1800,
            )
            found = sorted(Path(scratch).glob(f"{package}_*.deb"))
            if not result.ok or not found:
                raise KernelBuildError(
                    "source",
                    f"{installed} is absent and `apt-get download {package}` failed: "
                    f"{(result.stderr or result.stdout).strip()[-600:]}",
                    hint=f"apt-get install {package}",
                )
            self.local.run(["dpkg-deb", "-x", str(found[0]), scratch], timeout=900)
            inner = Path(scratch) / "usr" / "src" / f"{package}.tar.xz"
            if not inner.is_file():
                raise KernelBuildError("source", f"{found[0].name} holds no {inner.name}")
            inner.rename(cached)
        return cached

    def source(self) -> None:
        tarball = self.tarball()
        self.tree.mkdir()
        self.local.run(
            ["tar", "-C", str(self.tree), "--strip-components=1", "-xf", str(tarball)],
            timeout=1800,
        )
        if not (self.tree / "Makefile").is_file():
            raise KernelBuildError("source", f"{tarball} did not unpack into a kernel tree")

    # -- configure -------------------------------------------------------------------------
    def make(self, *targets: str, timeout: float = 900) -> str:
        result = self.local.run(
            ["make", "-C", str(self.tree), "-s", *targets], timeout=timeout, check=False
        )
        if not result.ok:
            raise KernelBuildError(
                "configure", f"make {' '.join(targets)}: {result.stderr.strip()[-1500:]}"
            )
        return result.stdout

    def configure(self) -> None:
        for directory in self.recipe.gcov_dirs:
            top = self.tree / directory
            makefiles = sorted(top.rglob("Makefile")) if top.is_dir() else []
            if not makefiles:
                raise KernelBuildError("configure", f"{directory} has no Makefile in the tree")
            for makefile in makefiles:
                with makefile.open("a") as handle:
                    handle.write("\n# ocfs2lab: coverage of this directory\nGCOV_PROFILE := y\n")
        fragment = self.tmp / FRAGMENT_ASSET
        fragment.write_text(self.recipe.fragment())
        self.make("x86_64_defconfig")
        merge = self.local.run(
            [
                "sh",
                "-c",
                'cd "$1" && scripts/kconfig/merge_config.sh -m .config '
                'kernel/configs/kvm_guest.config "$2"',
                "sh",
                str(self.tree),
                str(fragment),
            ],
            check=False,
            timeout=300,
        )
        if not merge.ok:
            raise KernelBuildError("configure", f"merge_config.sh: {merge.stdout[-1500:]}")
        self.make("olddefconfig")
        problems = config_mismatches(
            parse_config(fragment.read_text()), parse_config((self.tree / ".config").read_text())
        )
        if problems:
            raise KernelBuildError(
                "configure",
                "options of the lab's fragment did not stick: " + "; ".join(problems),
                hint=f"fix ocfs2lab/vm/assets/{FRAGMENT_ASSET} for {self.recipe.source_package}",
            )

    # -- compile ---------------------------------------------------------------------------
    def compile(self) -> None:
        jobs = self.recipe.jobs or os.cpu_count() or 1
        logfile = self.tmp / "make.log"
        name = "kernel compile"
        proc = spawn(
            ["make", "-C", str(self.tree), f"-j{jobs}", "bzImage", "modules"],
            log_path=logfile,
            name="make",
        )
        with proc:
            deadline = Deadline(COMPILE_TIMEOUT)
            offset = 0
            while proc.wait(5.0) is None:
                offset = self._count_compiled(logfile, offset)
                self.reporter.advance(name, self.compiled, f"{self.compiled} files compiled")
                if deadline.expired:
                    raise KernelBuildError(
                        "compile", f"make still running after {COMPILE_TIMEOUT:g} s"
                    )
                if self.cancel.is_set():
                    raise KernelBuildError("compile", "cancelled: the image build stopped")
            self._count_compiled(logfile, offset)
            if proc.exit_code != 0:
                raise KernelBuildError(
                    "compile",
                    f"make exited with {proc.exit_code}: {proc.log_text(2500)}",
                    hint=f"the whole log: {logfile}",
                )
        self.reporter.advance(name, self.compiled, f"{self.compiled} files compiled")

    def _count_compiled(self, logfile: Path, offset: int) -> int:
        with contextlib.suppress(OSError), logfile.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].decode(errors="replace").splitlines():
                if _COMPILE_LINE.match(line):
                    self.compiled += 1
            return offset + end
        return offset

    # -- install ---------------------------------------------------------------------------
    def install(self) -> None:
        self.release = self.make("kernelrelease").strip()
        modules = self.tmp / "modules"
        self.local.run(
            [
                "make",
                "-C",
                str(self.tree),
                "-s",
                f"INSTALL_MOD_PATH={modules}",
                "INSTALL_MOD_STRIP=1",
                "DEPMOD=/sbin/depmod",
                "modules_install",
            ],
            timeout=1800,
        )
        moddir = modules / "lib" / "modules" / self.release
        if not moddir.is_dir():
            raise KernelBuildError("install", f"modules_install made no {moddir}")
        for link in ("build", "source"):
            (moddir / link).unlink(missing_ok=True)
        shutil.copyfile(self.tree / "arch" / "x86" / "boot" / "bzImage", self.tmp / "bzImage")
        shutil.copyfile(self.tree / "System.map", self.tmp / "System.map")
        shutil.copyfile(self.tree / ".config", self.tmp / "config")
        self.keep_gcov_tree()
        remove_tree(self.tree, self.local)

    def keep_gcov_tree(self) -> None:
        """Copy sources and notes of the profiled directories, and the headers they use."""
        keep = self.tmp / "gcov"
        notes = 0
        for directory in self.recipe.gcov_dirs:
            for path in sorted((self.tree / directory).rglob("*")):
                if path.is_file() and path.suffix in {".c", ".h", ".gcno"}:
                    notes += path.suffix == ".gcno"
                    target = keep / path.relative_to(self.tree)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
        if notes == 0:
            raise KernelBuildError(
                "install",
                f"no .gcno file in {', '.join(self.recipe.gcov_dirs)}: nothing was profiled",
            )
        # Inline functions of headers count in the notes: keep the headers gcov will open.
        for headers in ("include", "arch/x86/include"):
            shutil.copytree(
                self.tree / headers,
                keep / headers,
                ignore=shutil.ignore_patterns("*.o", "*.cmd", ".*"),
                dirs_exist_ok=True,
            )

    def write_manifest(self, total: float) -> None:
        gcc = self.local.run(["gcc", "-dumpfullversion"], timeout=60).stdout.strip()
        manifest = {
            "key": self.recipe.key(),
            "recipe": attrs.asdict(self.recipe, filter=lambda a, _v: a.name != "jobs"),
            "release": self.release,
            "build_root": str(self.tree),
            "gcc_version": gcc,
            "gcov_dirs": list(self.recipe.gcov_dirs),
            "files_compiled": self.compiled,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(total, 1),
            "phase_seconds": self.durations,
        }
        path = self.tmp / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1) + "\n")


__all__ = [
    "KernelBuild",
    "KernelBuildError",
    "KernelRecipe",
    "build_kernel",
    "config_mismatches",
    "find_kernel",
    "kernel_build_missing",
    "kernels_dir",
    "parse_config",
]
