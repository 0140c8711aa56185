"""What the lab's cache holds, and pruning it: images, kernels, work trees, sources.

A researcher builds dozens of kernels; each is small (its ``bzImage``, modules, modules disk
and gcov notes, with every file that did not change hard-linked to the kernel built before
it), but work trees (a configuration's sources and objects) and images are large.
[`cache_entries`][ocfs2lab.vm.inventory.cache_entries] lists everything with its size (blocks on
disk, hard links counted
once per entry) and when it was last used; [`prune_cache`][ocfs2lab.vm.inventory.prune_cache]
removes what is unused, by
age or by count, and never what a running machine uses (a process holding one of its files
open or naming it on its command line) nor what the default recipe boots.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from attrs import frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.cache import processes_using, remove_cached
from ocfs2lab.vm.recipe import ImageRecipe, cache_root
from ocfs2lab.vm.states import SAVED_JSON, STATES_DIR, describe_slot, read_meta

log = logging.getLogger(__name__)

#: Kinds of cache entries, in the order they are listed.
KINDS = ("image", "state", "kernel", "work tree", "source")


@frozen
class CacheEntry:
    """One thing in the cache.

    Attributes:
        kind: ``image``, ``state`` (a saved machine state, inside its image's directory:
            its size counts in the image's too), ``kernel``, ``work tree`` or ``source``.
        name: Its directory's name (``<image>/<slot>`` for a state).
        path: Its directory.
        size_bytes: Bytes on disk (hard-linked files counted once).
        own_bytes: Bytes only this entry holds (files with no hard link elsewhere): what
            removing it frees. A kernel shares most of its files with the kernel built
            before it.
        last_used: When it was last built or used (seconds since the epoch).
        in_use: A running process uses it (a machine booted from it, a build in it).
        protected: The default recipe needs it (its image, kernel, work tree and source).
        detail: A short description (release, patches, ...).
    """

    kind: str
    name: str
    path: Path
    size_bytes: int
    own_bytes: int
    last_used: float
    in_use: bool
    protected: bool
    detail: str


def disk_usage(path: Path) -> int:
    """Bytes on disk below ``path``, each inode once."""
    return _usage(path)[0]


def _usage(path: Path) -> tuple[int, int]:
    """Bytes on disk below ``path`` (each inode once), and of those the bytes of inodes
    whose every link is below ``path``."""
    links: dict[tuple[int, int], list[int]] = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                entry = links.setdefault((st.st_dev, st.st_ino), [st.st_blocks * 512, 0, 0])
                entry[1] += 1
                entry[2] = st.st_nlink
    total = sum(size for size, _seen, _nlink in links.values())
    own = sum(size for size, seen, nlink in links.values() if seen >= nlink)
    return total, own


def _mtime(*paths: Path) -> float:
    times = [p.stat().st_mtime for p in paths if p.exists()]
    return max(times) if times else 0.0


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _protected_names(root: Path) -> set[tuple[str, str]]:
    """The entries the default recipe boots."""
    recipe = ImageRecipe()
    names = {("image", recipe.short_name)}
    kernel = recipe.kernel
    if kernel is not None:
        names |= {("kernel", kernel.short_name()), ("work tree", kernel.work_name())}
        sources = sorted((root / "kernels" / "src").glob(f"{kernel.source_package}-*"))
        names |= {("source", p.name) for p in sources if p.is_dir()}
    return names


def _describe(kind: str, path: Path) -> str:
    if kind == "image":
        data = _json(path / "manifest.json")
        recipe = data.get("recipe")
        release = recipe.get("release") if isinstance(recipe, dict) else None
        return f"{release or '?'}, {data.get('kernel') or 'lab'} kernel"
    if kind == "kernel":
        data = _json(path / "manifest.json")
        info = data.get("provenance")
        info = info if isinstance(info, dict) else {}
        parts = [str(data.get("release", "?"))]
        patches = info.get("patches") or []
        if isinstance(patches, list) and patches:
            parts.append("patches: " + ", ".join(str(p.get("name")) for p in patches))
        tree = info.get("tree")
        if isinstance(tree, dict):
            dirty = " (dirty)" if tree.get("dirty") else ""
            parts.append(f"tree {str(tree.get('commit', ''))[:12]}{dirty}")
        if info.get("profile"):
            parts.append(f"profile {info['profile']}")
        return "; ".join(parts)
    if kind == "state":
        meta = read_meta(path) or {}
        inputs = meta.get("inputs")
        kernel = Path(str(inputs.get("kernel", "?"))) if isinstance(inputs, dict) else None
        where = kernel.parent.name if kernel is not None else "?"
        gone = "; its kernel is gone" if _orphaned(path) else ""
        return f"{describe_slot(meta)}; kernel {where}{gone}"
    if kind == "work tree":
        return "sources and objects of one configuration"
    return "Debian's kernel source, unpacked"


def _state_dirs(images: Path) -> list[Path]:
    """Every saved-state slot of every image."""
    if not images.is_dir():
        return []
    return sorted(
        slot
        for image in images.iterdir()
        if image.is_dir() and not image.name.startswith(".")
        for slot in (image / STATES_DIR).glob("*")
        if slot.is_dir() and not slot.name.startswith(".")
    )


def _orphaned(slot: Path) -> bool:
    """True when an image or kernel file the slot was saved from is gone."""
    meta = read_meta(slot)
    inputs = meta.get("inputs") if meta else None
    if not isinstance(inputs, dict):
        return True
    return not all(Path(str(p)).exists() for p in inputs.values())


def remove_orphan_states(
    cache_dir: str | os.PathLike[str] | None = None, local: LocalRunner | None = None
) -> list[Path]:
    """Remove the saved states whose image or kernel files are gone (a kernel was removed):
    they can never be restored again. States in use by a running machine stay."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    removed = []
    for slot in _state_dirs(root / "images"):
        if _orphaned(slot) and not processes_using(slot):
            log.info("removing saved state %s: its image or kernel is gone", slot)
            remove_cached(slot, local)
            removed.append(slot)
    return removed


def remove_entry(path: Path, local: LocalRunner | None = None) -> None:
    """Remove one cache entry (image, kernel, work tree, source, state), its lock, and the
    saved states that depended on it."""
    remove_cached(path, local)
    root = path.parent.parent if path.parent.name in {"images", "kernels"} else None
    if root is not None:
        remove_orphan_states(root, local)


def _entries_of(kind: str, parent: Path) -> Iterable[Path]:
    if kind == "state":
        return _state_dirs(parent)
    if not parent.is_dir():
        return []
    return sorted(
        p
        for p in parent.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and (kind != "kernel" or p.name not in {"work", "src"})
    )


def cache_entries(cache_dir: str | os.PathLike[str] | None = None) -> list[CacheEntry]:
    """Everything the cache holds, by kind, most recently used first."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    protected = _protected_names(root)
    places = {
        "image": root / "images",
        "state": root / "images",
        "kernel": root / "kernels",
        "work tree": root / "kernels" / "work",
        "source": root / "kernels" / "src",
    }
    entries: list[CacheEntry] = []
    for kind in KINDS:
        for path in _entries_of(kind, places[kind]):
            used = _mtime(
                path / "manifest.json",
                path / "last-used",
                path / "state.json",
                path / "last-kernel",
                path / "source.json",
                path / SAVED_JSON,
            )
            size, own = _usage(path)
            entries.append(
                CacheEntry(
                    kind=kind,
                    name=f"{path.parent.parent.name}/{path.name}" if kind == "state" else path.name,
                    path=path,
                    size_bytes=size,
                    own_bytes=own,
                    last_used=used,
                    in_use=bool(processes_using(path)),
                    protected=(kind, path.name) in protected,
                    detail=_describe(kind, path),
                )
            )
    entries.sort(key=lambda e: (KINDS.index(e.kind), -e.last_used))
    return entries


def prune_cache(
    *,
    older_than: float | None = None,
    keep: int | None = None,
    dry_run: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    local: LocalRunner | None = None,
) -> list[CacheEntry]:
    """Remove cache entries that are unused: last used more than ``older_than`` seconds ago,
    or beyond the ``keep`` most recently used of their kind (either rule removes). Saved
    states go with their image, and with their kernel: a state whose image or kernel is
    gone is removed whatever the rules.

    What a running process uses and what the default recipe boots are never removed.

    Args:
        older_than: Age in seconds.
        keep: Entries of each kind to keep (most recently used first).
        dry_run: Only say what would be removed.
        cache_dir: The cache.
        local: Runs ``umount`` when a dead build left a mount.

    Returns:
        The entries removed (or that would be).

    Raises:
        SpecError: Neither rule given, or a negative one.
    """
    if older_than is None and keep is None:
        raise SpecError("prune", None, "say which: an age (older_than) or a count (keep)")
    if older_than is not None and older_than < 0:
        raise SpecError("older_than", older_than, "must not be negative")
    if keep is not None and keep < 0:
        raise SpecError("keep", keep, "must not be negative")
    now = time.time()
    removed: list[CacheEntry] = []
    seen: dict[str, int] = {}
    for entry in cache_entries(cache_dir):
        rank = seen.get(entry.kind, 0)
        seen[entry.kind] = rank + 1
        if entry.protected or entry.in_use:
            continue
        too_old = older_than is not None and now - entry.last_used > older_than
        too_many = keep is not None and rank >= keep
        orphan = entry.kind == "state" and _orphaned(entry.path)
        if not (too_old or too_many or orphan):
            continue
        if not entry.path.exists():  # a state inside an image removed just before
            continue
        removed.append(entry)
        if dry_run:
            continue
        log.info("pruning %s %s (%d bytes)", entry.kind, entry.path, entry.size_bytes)
        remove_cached(entry.path, local)
    if not dry_run:
        remove_orphan_states(cache_dir, local)
    return removed


__all__ = [
    "KINDS",
    "CacheEntry",
    "cache_entries",
    "disk_usage",
    "prune_cache",
    "remove_entry",
    "remove_orphan_states",
]
