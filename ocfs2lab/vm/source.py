"""The kernel's source: Debian's tarball, the researcher's patches and tree, and the work tree.

What a lab kernel is compiled from is three layers:

* the **pristine source**: Debian's ``linux-source-<series>`` tarball, unpacked once into
  ``<cache>/kernels/src/<package>-<tarball sha>/linux`` with a manifest of every file's git
  blob id (``manifest.json``), so any other tree can be compared with it cheaply;
* the **user's tree** (optional): a local Linux git checkout. It is only ever *read*: ``git``
  runs with ``--no-optional-locks`` (no index refresh), and its files are compared by blob id
  (``git ls-files -s``) and hashed only where the working tree differs from the index;
* the **patches** (optional): unified diffs or ``git format-patch`` files, applied in order
  with ``patch -p1 --fuzz=0`` (context must match exactly; line offsets are fine) in a
  scratch directory holding copies of the files they touch. A patch
  that does not apply fails here, before anything is compiled, naming the patch and the hunk.

What results is a *delta*: the files whose content differs from the pristine source (or that
it lacks, or that are deleted). [`sync_work_tree`][ocfs2lab.vm.source.sync_work_tree] makes a **work
tree** hold exactly the
pristine source plus that delta, rewriting only the files whose content changes, each with a
fresh modification time, so ``make`` recompiles only what they touch. The work tree's state
(which delta it holds) is in ``state.json`` beside it; a file being rewritten is marked
unknown first, so an interrupted sync is repaired by the next one.

Pure helpers ([`patch_targets`][ocfs2lab.vm.source.patch_targets],
[`git_blob_id`][ocfs2lab.vm.source.git_blob_id],
[`compute_delta_changes`][ocfs2lab.vm.source.compute_delta_changes])
are apart from the functions that touch files and run commands.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from attrs import frozen

from ocfs2lab.errors import SourceError, SpecError
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.cache import file_sha256

log = logging.getLogger(__name__)

#: What marks an entry of a manifest or delta as a symbolic link (its target is hashed).
LINK_PREFIX = "link:"
#: A delta entry whose content is not known (a rewrite was under way): always rewritten.
UNKNOWN = "?"
#: Files a Linux tree must have (checked before anything is done with it).
LINUX_TREE_MARKERS = ("Makefile", "Kconfig", "MAINTAINERS", "arch/x86/Kconfig", "fs/ocfs2")

_DIFF_GIT = re.compile(r"^diff --git (\S+) (\S+)$")
_OLD = re.compile(r"^--- (\S+)")
_NEW = re.compile(r"^\+\+\+ (\S+)")
_VERSION = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)\s*$", re.M)


# -- pure -------------------------------------------------------------------------------------
def git_blob_id(data: bytes) -> str:
    """The id git gives a file with this content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _strip(path: str, strip: int) -> str | None:
    if path == "/dev/null":
        return None
    parts = path.split("/")
    if len(parts) <= strip:
        return None
    return "/".join(parts[strip:])


def patch_targets(text: str, strip: int = 1) -> list[str]:
    """The tree paths a patch touches (created, changed, deleted or renamed), in order.

    It reads ``diff --git a/X b/Y`` lines (git renames and mode changes have no ``---``
    lines) and the ``--- X`` / ``+++ Y`` pairs of plain unified diffs, with ``strip``
    leading components removed as ``patch -p<strip>`` does.
    """
    found: list[str] = []

    def add(path: str | None) -> None:
        if path and path not in found:
            found.append(path)

    lines = text.splitlines()
    for i, line in enumerate(lines):
        git = _DIFF_GIT.match(line)
        if git:
            add(_strip(git.group(1), strip))
            add(_strip(git.group(2), strip))
            continue
        old = _OLD.match(line)
        if old and i + 1 < len(lines):
            new = _NEW.match(lines[i + 1])
            if new:
                add(_strip(old.group(1), strip))
                add(_strip(new.group(1), strip))
    return found


def failed_hunks(output: str) -> list[str]:
    """The ``Hunk #N FAILED at L`` lines (with the file before them) of ``patch``'s output."""
    current = ""
    failed: list[str] = []
    for line in output.splitlines():
        if line.startswith(("patching file ", "checking file ")):
            current = line.split(" ", 2)[2].strip()
        elif "FAILED" in line or "can't find file" in line or "malformed" in line.lower():
            failed.append(f"{current}: {line.strip()}" if current else line.strip())
    return failed


def compute_delta_changes(
    pristine: Mapping[str, str],
    held: Mapping[str, str | None],
    wanted: Mapping[str, str | None],
) -> list[str]:
    """The paths a work tree must rewrite (or delete) to go from delta ``held`` to ``wanted``.

    A delta maps a path to the blob id of its content, or ``None`` for a path the tree must
    not hold; paths outside a delta hold the pristine content (``pristine[path]``, absent when
    the pristine source lacks them). `UNKNOWN` never equals anything.
    """
    changes = []
    for path in sorted(set(held) | set(wanted)):
        have = held[path] if path in held else pristine.get(path)
        want = wanted[path] if path in wanted else pristine.get(path)
        if have != want or have == UNKNOWN:
            changes.append(path)
    return changes


def linux_version(makefile_text: str) -> str | None:
    """``6.12.117`` from the top Makefile of a Linux tree, ``None`` when it is not one."""
    found = dict(_VERSION.findall(makefile_text))
    if "VERSION" not in found or "PATCHLEVEL" not in found:
        return None
    return ".".join(found[k] for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL") if k in found)


# -- checks on the user's inputs ---------------------------------------------------------------
def check_linux_tree(tree: Path) -> str:
    """The version of the Linux git tree ``tree``.

    Raises:
        SpecError: It is not a directory, not a Linux tree or not a git checkout.
    """
    if not tree.is_dir():
        raise SpecError("kernel.tree", str(tree), "must be a directory (a Linux git checkout)")
    missing = [m for m in LINUX_TREE_MARKERS if not (tree / m).exists()]
    version = None
    with contextlib.suppress(OSError):
        version = linux_version((tree / "Makefile").read_text(errors="replace")[:4000])
    if missing or version is None:
        raise SpecError(
            "kernel.tree",
            str(tree),
            "is not a Linux source tree"
            + (f" (it lacks {', '.join(missing)})" if missing else " (no VERSION in Makefile)"),
        )
    if not (tree / ".git").exists():
        raise SpecError(
            "kernel.tree",
            str(tree),
            "must be a git checkout: the lab keys the kernel by its commit and its changes",
            hint="git init && git add -A && git commit, or pass patches= instead",
        )
    for leftover in (".config", "include/config/auto.conf"):
        if (tree / leftover).exists():
            log.info("kernel.tree %s has a %s; the lab ignores it", tree, leftover)
    return version


def check_patch(path: Path) -> str:
    """The text of the patch file ``path``.

    Raises:
        SpecError: It cannot be read or touches no file.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise SpecError("kernel.patches", str(path), f"cannot be read: {err.strerror}") from None
    if not patch_targets(text):
        raise SpecError(
            "kernel.patches",
            str(path),
            "is not a unified diff (no '--- a/...' / '+++ b/...' or 'diff --git' lines)",
        )
    return text


# -- the user's tree ----------------------------------------------------------------------------
def _git(tree: Path, local: LocalRunner, *args: str, timeout: float = 300) -> bytes:
    result = local.run(
        ["git", "--no-optional-locks", "-C", str(tree), *args],
        check=False,
        timeout=timeout,
        env={"GIT_OPTIONAL_LOCKS": "0"},
    )
    if not result.ok:
        raise SourceError(
            f"git {' '.join(args)} in {tree} failed: {result.stderr.strip()[-400:]}",
            hint="kernel.tree must be a readable git checkout",
        )
    return result.stdout_bytes


def _file_id(path: Path) -> str:
    if path.is_symlink():
        return LINK_PREFIX + os.readlink(path)
    return git_blob_id(path.read_bytes())


@frozen
class TreeState:
    """What a user's tree holds now.

    Attributes:
        path: The tree.
        commit: ``HEAD``'s commit id.
        dirty: Uncommitted changes exist (tracked files changed, or untracked files).
        changes_sha256: A hash of those changes (empty string when clean).
        version: The Linux version of its top Makefile.
    """

    path: str
    commit: str
    dirty: bool
    changes_sha256: str
    version: str


def tree_state(tree: Path, local: LocalRunner | None = None) -> TreeState:
    """HEAD and a hash of the uncommitted changes of the Linux tree ``tree`` (read only).

    Raises:
        SpecError: Not a Linux git tree.
        SourceError: git failed.
    """
    local = local or LocalRunner()
    version = check_linux_tree(tree)
    commit = _git(tree, local, "rev-parse", "HEAD").decode().strip()
    diff = _git(tree, local, "diff", "HEAD", "--binary", "--no-ext-diff", timeout=900)
    untracked = _git(tree, local, "ls-files", "-z", "--others", "--exclude-standard")
    digest = hashlib.sha256(diff)
    names = sorted(n for n in untracked.decode(errors="surrogateescape").split("\0") if n)
    for name in names:
        digest.update(name.encode(errors="surrogateescape") + b"\0")
        with contextlib.suppress(OSError):
            digest.update(_file_id(tree / name).encode())
    dirty = bool(diff) or bool(names)
    return TreeState(
        path=str(tree),
        commit=commit,
        dirty=dirty,
        changes_sha256=digest.hexdigest() if dirty else "",
        version=version,
    )


def tree_files(tree: Path, local: LocalRunner | None = None) -> dict[str, str]:
    """Every source file of the user's tree and its blob id (symlinks: ``link:<target>``).

    Source files are those git tracks plus untracked ones it does not ignore. Files git
    tracks are taken by the index's blob id unless the working tree changed them (``git
    diff --name-only``): those, and untracked files, are hashed here.
    """
    local = local or LocalRunner()
    files: dict[str, str] = {}
    listing = _git(tree, local, "ls-files", "-s", "-z")
    for entry in listing.decode(errors="surrogateescape").split("\0"):
        if not entry:
            continue
        meta, _, name = entry.partition("\t")
        mode, blob, _stage = meta.split()
        if mode == "160000":  # a submodule: no file
            continue
        files[name] = blob
    changed = _git(tree, local, "diff", "--name-only", "-z", timeout=900)
    others = _git(tree, local, "ls-files", "-z", "--others", "--exclude-standard")
    for raw in (changed + b"\0" + others).decode(errors="surrogateescape").split("\0"):
        if not raw:
            continue
        path = tree / raw
        if path.is_symlink() or path.is_file():
            files[raw] = _file_id(path)
        else:
            files.pop(raw, None)
    for name, blob in list(files.items()):
        # The index holds a symlink's target as its blob; the manifest marks links apart.
        if (tree / name).is_symlink() and not blob.startswith(LINK_PREFIX):
            files[name] = LINK_PREFIX + os.readlink(tree / name)
    return files


# -- the pristine source -----------------------------------------------------------------------
def tree_manifest(root: Path) -> dict[str, str]:
    """Every file below ``root`` and its blob id (symlinks: ``link:<target>``)."""
    manifest: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            manifest[str(path.relative_to(root))] = _file_id(path)
        for name in list(dirnames):
            path = Path(dirpath) / name
            if path.is_symlink():
                manifest[str(path.relative_to(root))] = LINK_PREFIX + os.readlink(path)
    return manifest


@frozen
class PristineSource:
    """Debian's kernel source, unpacked once.

    Attributes:
        directory: ``<cache>/kernels/src/<package>-<sha>``.
        tarball_sha256: The tarball it came from.
    """

    directory: Path
    tarball_sha256: str

    @property
    def tree(self) -> Path:
        """The unpacked tree."""
        return self.directory / "linux"

    def manifest(self) -> dict[str, str]:
        """Every file of the tree and its blob id."""
        data: dict[str, str] = json.loads((self.directory / "manifest.json").read_text())
        return data

    @classmethod
    def load(cls, directory: Path) -> PristineSource | None:
        """The complete pristine source in ``directory``, else ``None``."""
        try:
            meta = json.loads((directory / "source.json").read_text())
        except (OSError, ValueError):
            return None
        if not (directory / "manifest.json").is_file() or not (directory / "linux").is_dir():
            return None
        return cls(directory=directory, tarball_sha256=str(meta.get("tarball_sha256", "")))


def unpack_pristine(tarball: Path, tmp: Path, local: LocalRunner) -> None:
    """Unpack ``tarball`` into ``tmp/linux`` and write its manifest (a build step)."""
    tree = tmp / "linux"
    tree.mkdir()
    local.run(["tar", "-C", str(tree), "--strip-components=1", "-xf", str(tarball)], timeout=1800)
    if not (tree / "Makefile").is_file():
        raise SourceError(f"{tarball} did not unpack into a kernel tree")
    (tmp / "manifest.json").write_text(json.dumps(tree_manifest(tree)))
    (tmp / "source.json").write_text(
        json.dumps({"tarball": str(tarball), "tarball_sha256": file_sha256(tarball)})
    )


# -- the wanted delta --------------------------------------------------------------------------
@frozen
class Delta:
    """Files that differ from the pristine source, and where their content is read.

    Attributes:
        ids: Path -> blob id, ``None`` for a path that must not exist.
        sources: Path -> the file holding the content (for every path whose id is not None).
    """

    ids: dict[str, str | None]
    sources: dict[str, Path]


def tree_delta(tree: Path, pristine: Mapping[str, str], local: LocalRunner | None = None) -> Delta:
    """How the user's tree differs from the pristine source.

    A pristine file that git neither tracks nor lists as untracked, but that exists in the
    tree (an ignored file the tarball ships), keeps the tree's content.
    """
    files = tree_files(tree, local)
    ids: dict[str, str | None] = {}
    sources: dict[str, Path] = {}
    for path, blob in files.items():
        if pristine.get(path) != blob:
            ids[path] = blob
            sources[path] = tree / path
    for path in pristine:
        if path in files:
            continue
        on_disk = tree / path
        if on_disk.is_symlink() or on_disk.is_file():
            blob = _file_id(on_disk)
            if blob != pristine[path]:
                ids[path] = blob
                sources[path] = on_disk
        else:
            ids[path] = None
    return Delta(ids, sources)


def apply_patches(
    patches: Iterable[Path],
    base: Delta,
    pristine_tree: Path,
    scratch: Path,
    local: LocalRunner | None = None,
) -> Delta:
    """``base`` with ``patches`` applied in order (``patch -p1`` in ``scratch``).

    Only the files the patches touch are copied into ``scratch`` (from the base delta or the
    pristine tree); the result adds them to the delta.

    Raises:
        SourceError: A patch does not apply: the message names the patch and the failing
            hunks, and shows the rejected hunk.
    """
    local = local or LocalRunner()
    ids = dict(base.ids)
    sources = dict(base.sources)
    for patch in patches:
        text = patch.read_text(errors="replace")
        targets = patch_targets(text)
        for path in targets:
            dest = scratch / path
            if dest.exists() or dest.is_symlink():
                continue
            if path in ids:
                origin = sources.get(path) if ids[path] is not None else None
            else:
                origin = pristine_tree / path
            if origin is not None and (origin.is_file() or origin.is_symlink()):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, dest, follow_symlinks=False)
        result = local.run(
            [
                "patch",
                "--batch",
                "--forward",
                "--no-backup-if-mismatch",
                # Every context line must match (offsets are fine): a hunk applied by fuzz
                # may land where its author did not mean it to, and the lab would measure
                # another change than the one named.
                "--fuzz=0",
                "-p1",
                "-d",
                str(scratch),
                "-i",
                str(patch),
            ],
            check=False,
            timeout=300,
        )
        if not result.ok:
            output = (result.stdout + result.stderr).strip()
            hunks = failed_hunks(output) or output.splitlines()[-3:]
            rejects = sorted(scratch.rglob("*.rej"))
            shown = ""
            if rejects:
                shown = "\nrejected hunk:\n" + rejects[0].read_text(errors="replace")[:1500]
            raise SourceError(
                f"patch {patch.name} does not apply: {'; '.join(hunks)}{shown}",
                patch=patch,
                hint=f"rebase {patch} on the kernel source the recipe builds "
                "(Debian's linux-source, or your tree)",
            )
        for path in targets:
            dest = scratch / path
            if dest.is_symlink() or dest.is_file():
                ids[path] = _file_id(dest)
                sources[path] = dest
            else:
                ids[path] = None
                sources.pop(path, None)
    return Delta(ids, sources)


# -- the work tree -----------------------------------------------------------------------------
def gcov_makefile(path: str, gcov_dirs: Iterable[str]) -> bool:
    """True for a Makefile under one of the profiled directories."""
    if not path.endswith("/Makefile"):
        return False
    return any(path.startswith(d.rstrip("/") + "/") for d in gcov_dirs)


#: What the lab appends to the Makefile of every profiled directory.
GCOV_SUFFIX = b"\n# ocfs2lab: coverage of this directory\nGCOV_PROFILE := y\n"


def _write_replacing(dest: Path, origin: Path, suffix: bytes) -> None:
    """Replace ``dest`` by a copy of ``origin`` (plus ``suffix``), as a new file: new mtime."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".ocfs2lab-", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        if origin.is_symlink():
            os.close(fd)
            tmp.unlink()
            tmp.symlink_to(os.readlink(origin))
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(origin.read_bytes() + suffix)
            tmp.chmod(origin.stat().st_mode & 0o777)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_state(work: Path) -> dict[str, str | None]:
    """The delta the work tree in ``work`` holds (``state.json``)."""
    try:
        data = json.loads((work / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    delta: dict[str, str | None] = data.get("delta", {})
    return delta


def write_state(work: Path, delta: Mapping[str, str | None]) -> None:
    """Record the delta the work tree holds (written whole, then renamed)."""
    tmp = work / "state.json.tmp"
    tmp.write_text(json.dumps({"delta": dict(delta)}, sort_keys=True))
    tmp.replace(work / "state.json")


def sync_work_tree(
    work: Path,
    pristine: PristineSource,
    wanted: Delta,
    gcov_dirs: Iterable[str],
    manifest: Mapping[str, str] | None = None,
) -> list[str]:
    """Make the work tree ``work/linux`` hold the pristine source plus ``wanted``.

    Only files whose content changes are rewritten, each with a fresh mtime (so ``make``
    rebuilds what depends on them, including files put back to their pristine content).

    Returns:
        The paths rewritten or removed.
    """
    tree = work / "linux"
    manifest = manifest if manifest is not None else pristine.manifest()
    held = read_state(work)
    changes = compute_delta_changes(manifest, held, wanted.ids)
    if not changes:
        return []
    marked = dict(held)
    marked.update({path: UNKNOWN for path in changes})
    write_state(work, marked)
    gcov = tuple(gcov_dirs)
    for path in changes:
        dest = tree / path
        want = wanted.ids[path] if path in wanted.ids else manifest.get(path)
        if want is None:
            if dest.is_symlink() or dest.is_file():
                dest.unlink()
            continue
        origin = wanted.sources[path] if path in wanted.ids else pristine.tree / path
        suffix = GCOV_SUFFIX if gcov_makefile(path, gcov) else b""
        _write_replacing(dest, origin, suffix)
    write_state(work, {p: v for p, v in wanted.ids.items()})
    log.info("work tree %s: %d file(s) rewritten", tree, len(changes))
    return changes


__all__ = [
    "GCOV_SUFFIX",
    "Delta",
    "PristineSource",
    "SourceError",
    "TreeState",
    "apply_patches",
    "check_linux_tree",
    "check_patch",
    "compute_delta_changes",
    "failed_hunks",
    "gcov_makefile",
    "git_blob_id",
    "linux_version",
    "patch_targets",
    "sync_work_tree",
    "tree_delta",
    "tree_files",
    "tree_manifest",
    "tree_state",
    "unpack_pristine",
]
