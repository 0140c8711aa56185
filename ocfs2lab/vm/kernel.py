"""The lab kernel: Debian's ``linux-source`` (or the researcher's tree), their patches, gcov.

A [`KernelRecipe`][ocfs2lab.vm.kernel.KernelRecipe] says what to build;
[`build_kernel`][ocfs2lab.vm.kernel.build_kernel] builds it or finds it in
``<cache>/kernels/<series>-<key>/``, and returns a [`KernelBuild`][ocfs2lab.vm.kernel.KernelBuild].
The first build of a
configuration compiles everything (docs/facts.md says how long, here); it happens in a **work
tree** (``<cache>/kernels/work/<series>-<config key>/linux``) that is kept with its objects.
A later recipe of the same configuration (other patches, another commit of the user's tree)
rewrites only the source files that differ ([`ocfs2lab.vm.source`][ocfs2lab.vm.source]), so ``make``
recompiles only what they touch; a change confined to modules relinks no ``bzImage``. Each
kernel's directory holds:

* ``bzImage``, ``System.map`` and ``config`` of the kernel;
* ``modules/lib/modules/<release>/``: its modules (stripped), and ``modules.img``: the same
  as a small ext4 disk (label ``ocfs2lab-mods``) that machines attach read-only and mount on
  ``/usr/lib/modules``, so the cached root image boots any lab kernel;
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

The build runs like the image build: under a file lock (and one on the work tree), in a
temporary directory renamed into place when complete; a dead builder's directory (and its
orphaned ``make``) is removed by the next build, and objects a killed ``make`` may have left
half-written in the work tree are removed before the next compile. ``make`` is the one
long process here; it is started by [`spawn`][ocfs2lab.runner.process.spawn] and stopped by
its own process group on error or Ctrl-C.
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
from typing import Any

import attrs
from attrs import field, frozen

from ocfs2lab.errors import HostError, KernelBuildError
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.process import spawn
from ocfs2lab.vm.cache import (
    build_once,
    file_lock,
    file_sha256,
    lock_path,
    remove_tree,
    run_phases,
)
from ocfs2lab.vm.recipe import FRAGMENT_ASSET, MODULES_LABEL, KernelRecipe, cache_root
from ocfs2lab.vm.source import (
    GCOV_SUFFIX,
    Delta,
    PristineSource,
    SourceError,
    TreeState,
    apply_patches,
    gcov_makefile,
    sync_work_tree,
    tree_delta,
    tree_state,
    unpack_pristine,
)
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
    "patch": "patch",
    "git": "git",
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
_COMPILE_LINE = re.compile(r"^\s+CC(?: \[M\])?\s+(\S+)")
#: Outputs a killed ``make`` may leave half-written (removed when newer than its marker).
_PARTIAL_OUTPUTS = ("*.o", "*.ko", "*.a", "*.gcno", "*.mod.c", "vmlinux*", "bzImage", ".tmp*")
#: Compiled files listed in a kernel's manifest (a full build compiles thousands).
LISTED_COMPILED = 400


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
        key: The recipe key it was built for.
        provenance: What it was made of
            ([`KernelRecipe.provenance`][ocfs2lab.vm.kernel.KernelRecipe.provenance], plus
            ``release``).
    """

    directory: Path = field(converter=Path)
    release: str
    build_root: str
    gcc_version: str
    gcov_dirs: tuple[str, ...]
    key: str = ""
    provenance: dict[str, Any] = field(factory=dict, eq=False)

    @property
    def bzimage(self) -> Path:
        """The kernel image to boot."""
        return self.directory / "bzImage"

    @property
    def modules_root(self) -> Path:
        """A root holding ``lib/modules/<release>/``."""
        return self.directory / "modules"

    @property
    def modules_disk(self) -> Path:
        """The modules as an ext4 disk (label ``ocfs2lab-mods``), for ``/usr/lib/modules``."""
        return self.directory / "modules.img"

    @property
    def gcov_tree(self) -> Path:
        """Sources and ``.gcno`` files of the profiled directories, at their tree paths."""
        return self.directory / "gcov"

    def manifest(self) -> dict[str, Any]:
        """The kernel's ``manifest.json`` (recipe, provenance, what compiled, times)."""
        data: dict[str, Any] = json.loads((self.directory / "manifest.json").read_text())
        return data

    @classmethod
    def load(cls, directory: Path, key: str | None = None) -> KernelBuild | None:
        """The complete kernel in ``directory`` (of recipe key ``key`` when given), else
        ``None``."""
        try:
            data = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if key is not None and data.get("key") != key:
            return None
        try:
            build = cls(
                directory=directory,
                release=str(data["release"]),
                build_root=str(data["build_root"]),
                gcc_version=str(data["gcc_version"]),
                gcov_dirs=tuple(data["gcov_dirs"]),
                key=str(data["key"]),
                provenance=dict(data.get("provenance") or {}),
            )
        except (KeyError, TypeError):
            return None
        complete = (
            build.bzimage.is_file()
            and build.modules_disk.is_file()
            and (build.modules_root / "lib" / "modules" / build.release).is_dir()
        )
        return build if complete else None


def kernels_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/kernels``."""
    return (cache_dir if cache_dir is not None else cache_root()) / "kernels"


def work_trees_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/kernels/work``: one build tree (sources and objects) per configuration."""
    return kernels_dir(cache_dir) / "work"


def sources_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/kernels/src``: Debian's kernel sources, unpacked."""
    return kernels_dir(cache_dir) / "src"


def find_kernel(
    recipe: KernelRecipe | None = None, *, cache_dir: Path | None = None
) -> KernelBuild | None:
    """The cached kernel of ``recipe``, or ``None`` when it was not built yet."""
    recipe = recipe or KernelRecipe()
    tree = tree_state(recipe.tree) if recipe.tree is not None else None
    return KernelBuild.load(kernels_dir(cache_dir) / recipe.short_name(tree), recipe.key(tree))


def kernel_build_missing() -> list[str]:
    """The Debian packages a kernel build lacks on this machine."""
    return sorted(
        {pkg for tool, pkg in BUILD_TOOLS.items() if shutil.which(tool) is None}
        | {pkg for path, pkg in BUILD_HEADERS.items() if not Path(path).exists()}
    )


def check_build_host() -> None:
    """Raise [`HostError`][ocfs2lab.errors.HostError] naming the packages a kernel build lacks
    here."""
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
    """The lab kernel of ``recipe``: from the cache, or built now and cached.

    The first kernel of a configuration compiles everything (minutes: docs/facts.md says how
    long on two cores); later ones of the same configuration (other patches, another commit
    or edit of the tree) recompile only what their source changes touch.

    Args:
        recipe: What to build (the trixie kernel with the default gcov directories).
        cache_dir: Cache directory (as for [`build_image`][ocfs2lab.vm.image.build_image]).
        reporter: Receives the phases ``kernel source``, ``kernel configure``, ``kernel
            compile`` (advancing with the number of files compiled) and ``kernel install``.
        local: Runs the host commands.
        lock_timeout: Seconds to wait for another process building the same kernel (or
            using the same work tree).
        cancel: Set by another thread to stop a compile under way (it then raises).

    Raises:
        HostError: A build tool is missing, or another build holds the lock too long.
        KernelBuildError: A build step failed: a patch that does not apply or a config line
            that does not stick fails before anything compiles (nothing is left in the cache
            but the reusable work tree).
    """
    recipe = recipe or KernelRecipe()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    kernels = kernels_dir(root)
    tree = tree_state(recipe.tree) if recipe.tree is not None else None
    key = recipe.key(tree)
    final = kernels / recipe.short_name(tree)
    found = KernelBuild.load(final, key)
    if found is not None:
        log.info("lab kernel %s: cached", final)
        _touch(final)
        return found
    check_build_host()
    reporter = reporter or LogReporter()
    local = local or LocalRunner()
    work = work_trees_dir(root) / recipe.work_name()

    def build(tmp: Path) -> None:
        _KernelBuild(
            recipe, key, tree, tmp, work, root, reporter, local, cancel or threading.Event()
        ).run()

    with file_lock(lock_path(work), timeout=lock_timeout, what="kernel work tree"):
        built = build_once(
            final,
            lambda: KernelBuild.load(final, key),
            build,
            what="kernel build",
            lock_timeout=lock_timeout,
            local=local,
        )
    log.info("lab kernel %s: ready (%s)", final, built.release)
    return built


def _touch(path: Path) -> None:
    """Mark a cached build as used now (``ocfs2lab image list`` shows it, prune keeps it)."""
    with contextlib.suppress(OSError):
        (path / "last-used").write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")


def pristine_source(
    recipe: KernelRecipe,
    tarball: Path,
    cache: Path,
    local: LocalRunner,
    lock_timeout: float = 3600.0,
) -> PristineSource:
    """Debian's source of ``recipe``, unpacked once in ``<cache>/kernels/src``."""
    sha = file_sha256(tarball)
    final = sources_dir(cache) / f"{recipe.source_package}-{sha[:16]}"
    return build_once(
        final,
        lambda: PristineSource.load(final),
        lambda tmp: unpack_pristine(tarball, tmp, local),
        what="kernel source",
        lock_timeout=lock_timeout,
        local=local,
    )


@attrs.define
class _KernelBuild:
    recipe: KernelRecipe
    key: str
    tree_state: TreeState | None
    tmp: Path
    work: Path
    cache: Path
    reporter: Reporter
    local: LocalRunner
    cancel: threading.Event
    durations: dict[str, float] = attrs.field(factory=dict)
    release: str = ""
    compiled: int = 0
    compiled_files: list[str] = attrs.field(factory=list)
    pristine: PristineSource | None = None
    delta: Delta | None = None
    source_changes: list[str] = attrs.field(factory=list)
    fresh_work_tree: bool = False
    reused: dict[str, Any] = attrs.field(factory=dict)
    pristine_files: dict[str, str] = attrs.field(factory=dict)

    @property
    def tree(self) -> Path:
        """The work tree: sources and objects, kept between builds."""
        return self.work / "linux"

    @property
    def marker(self) -> Path:
        return self.work / "building"

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
        """The pristine source, the user's tree's changes to it, the patches on top: all
        before the work tree is touched, so a patch that does not apply changes nothing."""
        self.pristine = pristine_source(self.recipe, self.tarball(), self.cache, self.local)
        manifest = self.pristine.manifest()
        base = Delta({}, {})
        if self.recipe.tree is not None:
            base = tree_delta(self.recipe.tree, manifest, self.local)
        scratch = self.tmp / "patched"
        scratch.mkdir()
        try:
            self.delta = apply_patches(
                self.recipe.patches, base, self.pristine.tree, scratch, self.local
            )
        except SourceError as err:
            raise KernelBuildError("source", str(err), hint=err.hint) from err
        self.pristine_files = manifest

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

    def new_work_tree(self) -> None:
        """A copy of the pristine source with ``GCOV_PROFILE := y`` in the profiled
        directories' Makefiles."""
        assert self.pristine is not None
        self.work.mkdir(parents=True, exist_ok=True)
        staging = self.work / "linux.new"
        if staging.exists():
            remove_tree(staging, self.local)
        self.local.run(["cp", "-a", str(self.pristine.tree), str(staging)], timeout=1800)
        profiled = 0
        for path in sorted(self.pristine_files):
            if gcov_makefile(path, self.recipe.gcov_dirs):
                with (staging / path).open("ab") as handle:
                    handle.write(GCOV_SUFFIX)
                profiled += 1
        missing = [d for d in self.recipe.gcov_dirs if not (staging / d / "Makefile").is_file()]
        if missing:
            remove_tree(staging, self.local)
            raise KernelBuildError("configure", f"{', '.join(missing)}: no Makefile in the tree")
        (self.work / "state.json").unlink(missing_ok=True)
        staging.rename(self.tree)
        self.fresh_work_tree = True
        log.info("work tree %s: new, %d Makefiles profiled", self.tree, profiled)

    def remove_partial_outputs(self) -> None:
        """Remove what a killed ``make`` may have half-written (files newer than its marker)."""
        names: list[str] = []
        for pattern in _PARTIAL_OUTPUTS:
            names += ["-o", "-name", pattern] if names else ["-name", pattern]
        result = self.local.run(
            [
                "find",
                str(self.tree),
                "-newer",
                str(self.marker),
                "-type",
                "f",
                "(",
                *names,
                ")",
                "-print",
                "-delete",
            ],
            check=False,
            timeout=900,
        )
        log.warning(
            "work tree %s: an earlier build was interrupted; removed %d output(s) it may "
            "have left half-written",
            self.tree,
            len(result.stdout.splitlines()),
        )

    def configure(self) -> None:
        assert self.pristine is not None and self.delta is not None
        if not (self.tree / "Makefile").is_file():
            self.new_work_tree()
        elif self.marker.exists():
            self.remove_partial_outputs()
        self.source_changes = sync_work_tree(
            self.work, self.pristine, self.delta, self.recipe.gcov_dirs, self.pristine_files
        )
        fragment = self.tmp / FRAGMENT_ASSET
        fragment.write_text(self.recipe.config_text())
        try:
            if self.fresh_work_tree or not (self.tree / ".config").is_file():
                self.make("x86_64_defconfig")
                self.merge(fragment, "kernel/configs/kvm_guest.config")
            else:
                self.merge(fragment)
            self.make("olddefconfig")
            problems = config_mismatches(
                parse_config(fragment.read_text()),
                parse_config((self.tree / ".config").read_text()),
            )
            if problems:
                raise KernelBuildError(
                    "configure",
                    "config lines did not stick after `make olddefconfig`: " + "; ".join(problems),
                    hint="a line needs options it depends on (see its Kconfig 'depends on'); "
                    f"the lab's own lines are in ocfs2lab/vm/assets/{FRAGMENT_ASSET}",
                )
        except KernelBuildError:
            if self.fresh_work_tree:
                # A work tree is keyed by its configuration: one that cannot be configured
                # is of no use later.
                remove_tree(self.work, self.local)
            raise

    def merge(self, fragment: Path, *first: str) -> None:
        merge = self.local.run(
            [
                "sh",
                "-c",
                'cd "$1" && shift && scripts/kconfig/merge_config.sh -m .config "$@"',
                "sh",
                str(self.tree),
                *first,
                str(fragment),
            ],
            check=False,
            timeout=300,
        )
        if not merge.ok:
            raise KernelBuildError("configure", f"merge_config.sh: {merge.stdout[-1500:]}")

    # -- compile ---------------------------------------------------------------------------
    def compile(self) -> None:
        jobs = self.recipe.jobs or os.cpu_count() or 1
        logfile = self.tmp / "make.log"
        name = "kernel compile"
        self.marker.write_text(f"{os.getpid()}\n")
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
        log.info("kernel compile: %d file(s) compiled", self.compiled)

    def _count_compiled(self, logfile: Path, offset: int) -> int:
        with contextlib.suppress(OSError), logfile.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].decode(errors="replace").splitlines():
                match = _COMPILE_LINE.match(line)
                if match:
                    self.compiled += 1
                    self.compiled_files.append(match.group(1))
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
        self.reused = self.share_with_previous()
        self.modules_disk(modules / "lib" / "modules")
        shutil.rmtree(self.tmp / "patched", ignore_errors=True)
        self.marker.unlink(missing_ok=True)

    def share_with_previous(self) -> dict[str, Any]:
        """Compare with the kernel this work tree built last: unchanged files become hard
        links to it (a module-only change replaces only those modules), and the changed
        modules and whether ``bzImage`` changed are recorded."""
        previous = self.previous_kernel()
        if previous is None or previous.release != self.release:
            return {"previous": None}
        changed: list[str] = []
        linked = 0
        for path in sorted(self.tmp.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            rel = path.relative_to(self.tmp)
            if rel.parts[0] not in ("bzImage", "modules", "gcov"):
                continue
            old = previous.directory / rel
            if (
                old.is_file()
                and old.stat().st_size == path.stat().st_size
                and (old.read_bytes() == path.read_bytes())
            ):
                path.unlink()
                try:
                    path.hardlink_to(old)
                except OSError:
                    shutil.copy2(old, path)
                linked += 1
            elif path.suffix == ".ko":
                changed.append(path.name)
        bzimage_same = (self.tmp / "bzImage").stat().st_ino == previous.bzimage.stat().st_ino
        return {
            "previous": previous.key,
            "bzimage_changed": not bzimage_same,
            "modules_changed": changed,
            "files_shared": linked,
        }

    def previous_kernel(self) -> KernelBuild | None:
        """The kernel this work tree built last, or (when that one was removed) the most
        recent one still cached."""
        with contextlib.suppress(OSError):
            last = KernelBuild.load(Path((self.work / "last-kernel").read_text().strip()))
            if last is not None:
                return last
        candidates = []
        for manifest in kernels_dir(self.cache).glob("*/manifest.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(manifest.read_text()).get("work_tree") == self.work.name:
                    candidates.append((manifest.stat().st_mtime, manifest.parent))
        for _mtime, directory in sorted(candidates, reverse=True):
            found = KernelBuild.load(directory)
            if found is not None:
                return found
        return None

    def modules_disk(self, modules: Path) -> None:
        """``modules.img``: an ext4 disk holding ``<release>/...``, mounted on the guest's
        ``/usr/lib/modules``."""
        used = sum(p.stat().st_size for p in modules.rglob("*") if p.is_file())
        size_mib = used * 3 // 2 // (1 << 20) + 32
        self.local.run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-d",
                str(modules),
                "-L",
                MODULES_LABEL,
                "-E",
                "root_owner=0:0",
                "-m",
                "0",
                str(self.tmp / "modules.img"),
                f"{size_mib}M",
            ],
            timeout=600,
        )

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
        provenance = self.recipe.provenance(self.tree_state)
        provenance["release"] = self.release
        provenance["tarball_sha256"] = self.pristine.tarball_sha256 if self.pristine else ""
        manifest = {
            "key": self.key,
            "recipe": attrs.asdict(
                self.recipe,
                filter=lambda a, _v: a.name != "jobs",
                value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v,
            ),
            "provenance": provenance,
            "release": self.release,
            "build_root": str(self.tree),
            "work_tree": self.work.name,
            "gcc_version": gcc,
            "gcov_dirs": list(self.recipe.gcov_dirs),
            "files_compiled": self.compiled,
            "compiled": self.compiled_files[:LISTED_COMPILED],
            "source_changes": self.source_changes[:LISTED_COMPILED],
            "source_changes_count": len(self.source_changes),
            "fresh_work_tree": self.fresh_work_tree,
            "reused": self.reused,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(total, 1),
            "phase_seconds": self.durations,
        }
        path = self.tmp / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1) + "\n")
        final = self.tmp.parent / self.recipe.short_name(self.tree_state)
        (self.work / "last-kernel").write_text(str(final) + "\n")


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
    "pristine_source",
    "sources_dir",
    "work_trees_dir",
]
