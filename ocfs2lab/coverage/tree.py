"""Instrumented builds on this machine ([`GcovTree`][ocfs2lab.coverage.tree.GcovTree]) and the data
read for them.

A [`GcovTree`][ocfs2lab.coverage.tree.GcovTree] is an instrumented build: its sources and ``.gcno``
notes at their tree paths, the absolute path the build had when it was compiled, and where its
``.gcda`` data appear in a guest. Three kinds exist:

* the lab kernel ([`GcovTree.of_kernel`][ocfs2lab.coverage.tree.GcovTree.of_kernel]): data in
  ``/sys/kernel/debug/gcov<build root>``, one set per running kernel;
* the coverage probe built into the lab image
  ([`GcovTree.of_image`][ocfs2lab.coverage.tree.GcovTree.of_image]);
* any program the user built with ``--coverage``
  ([`GcovTree.of_build`][ocfs2lab.coverage.tree.GcovTree.of_build]), such as their own ocfs2-tools:
  its data go to ``GCOV_PREFIX`` (set in the lab's guests and node containers), optionally with
  ``GCOV_PREFIX_STRIP``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from ocfs2lab.errors import CoverageError, SpecError
from ocfs2lab.formats.gcda import gcda_relative_path
from ocfs2lab.runner.base import Runs
from ocfs2lab.vm.kernel import KernelBuild
from ocfs2lab.vm.recipe import GCOV_PREFIX, TOOLS_GCOV_DIR, LabImage

log = logging.getLogger(__name__)

#: Where a gcov kernel shows its counters (debugfs).
DEBUGFS = "/sys/kernel/debug"
KERNEL_GCOV = f"{DEBUGFS}/gcov"


def _dirs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v).strip("/") for v in value)


_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")


#: Anything gcov data are read from: a host, a node, a runner.
Target = Runs


def _check_name(_inst: object, _attr: object, value: str) -> None:
    if not _NAME.match(value):
        raise SpecError("coverage.name", value, "must be a short lower-case name (kernel, tools)")


def _check_root(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if not value.startswith("/"):
        raise SpecError(f"coverage.{attr.name}", value, "must be an absolute path")


def _check_strip(_inst: object, _attr: object, value: int) -> None:
    if value < 0:
        raise SpecError("coverage.strip", value, "must be 0 or more (GCOV_PREFIX_STRIP)")


@frozen
class GcovTree:
    """An instrumented build on this machine.

    Attributes:
        name: The report's name (``kernel`` gives ``kernel_html/``, ``tools`` ``tools_html/``).
        tree: Sources and ``.gcno`` notes at their paths in the build.
        build_root: Absolute path of the build when it was compiled.
        guest_root: Where its data appear in a guest (`KERNEL_GCOV` or ``GCOV_PREFIX``).
        report_dirs: Directories of the tree the report covers (all when empty).
        strip: ``GCOV_PREFIX_STRIP`` the programs ran with.
        gcc_version: The compiler that built it, when known (its ``gcov`` must read the data).
        provenance: What the build was made of (for the lab kernel: release, recipe key,
            patches, tree commit, profile); reports carry it.
    """

    name: str = field(validator=_check_name)
    tree: Path = field(converter=Path)
    build_root: str = field(validator=_check_root)
    guest_root: str = field(default=GCOV_PREFIX, validator=_check_root)
    report_dirs: tuple[str, ...] = field(default=(), converter=_dirs)
    strip: int = field(default=0, validator=_check_strip)
    gcc_version: str | None = None
    provenance: dict[str, Any] = field(factory=dict, eq=False)

    @classmethod
    def of_kernel(cls, kernel: KernelBuild) -> GcovTree:
        """The lab kernel's profiled code (``fs/ocfs2``, ``drivers/block/drbd``)."""
        return cls(
            name="kernel",
            tree=kernel.gcov_tree,
            build_root=kernel.build_root,
            guest_root=KERNEL_GCOV,
            report_dirs=kernel.gcov_dirs,
            gcc_version=kernel.gcc_version,
            provenance={"release": kernel.release, **kernel.provenance},
        )

    @classmethod
    def of_image(cls, image: LabImage, name: str = "tools") -> GcovTree:
        """The coverage probe (``o2probe``) built into ``image``.

        Raises:
            CoverageError: The image predates the probe.
        """
        try:
            manifest = json.loads((image.directory / "manifest.json").read_text())
            build_root = manifest["tools_gcov"]["build_root"]
            gcc = manifest["tools_gcov"].get("gcc_version")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CoverageError(
                f"the image {image.directory} has no coverage probe ({err})",
                hint="rebuild the lab image with this version of ocfs2lab",
            ) from err
        return cls(
            name=name,
            tree=image.directory / TOOLS_GCOV_DIR,
            build_root=build_root,
            gcc_version=gcc,
        )

    @classmethod
    def of_build(
        cls,
        tree: str | Path,
        *,
        name: str = "ocfs2-tools",
        build_root: str | None = None,
        strip: int = 0,
        report_dirs: Sequence[str] = (),
        guest_root: str = GCOV_PREFIX,
        gcc_version: str | None = None,
    ) -> GcovTree:
        """A program built with ``--coverage`` (your own ocfs2-tools, say).

        Args:
            tree: The build directory on this machine (sources and ``.gcno`` files).
            name: The report's name (``<name>_html/``).
            build_root: Its path when it was compiled (default: ``tree``).
            strip: The ``GCOV_PREFIX_STRIP`` the programs run with in the guests.
            report_dirs: Directories of the tree to report (all when empty).
            guest_root: The ``GCOV_PREFIX`` the programs run with (the lab's by default).
            gcc_version: The GCC that compiled it (checked against ``gcov`` when known).
        """
        path = Path(tree).resolve()
        return cls(
            name=name,
            tree=path,
            build_root=build_root or str(path),
            guest_root=guest_root,
            strip=strip,
            report_dirs=tuple(report_dirs),
            gcc_version=gcc_version,
        )

    def relative(self, guest_path: str) -> str | None:
        """The tree path of a guest's ``.gcda`` file, ``None`` when it is not this build's."""
        return gcda_relative_path(guest_path, self.guest_root, self.build_root, self.strip)

    def place(self, files: Mapping[str, bytes], dest: Path) -> int:
        """Make ``dest`` a copy of the tree (hard links where possible) holding the data.

        Returns:
            How many of ``files`` belong to this build (and were written).
        """
        _link_tree(self.tree, dest)
        placed = 0
        for path, data in files.items():
            rel = self.relative(path)
            if rel is None:
                continue
            target = dest / rel
            if not target.with_suffix(".gcno").exists():
                log.warning("%s: %s has no notes in %s; skipped", self.name, rel, self.tree)
                continue
            target.write_bytes(data)
            placed += 1
        return placed


def _link_tree(src: Path, dest: Path) -> None:
    def link(a: str, b: str) -> None:
        try:
            Path(b).hardlink_to(a)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link, dirs_exist_ok=True)


@frozen
class Collected:
    """gcov data read from the targets: ``data[tree name][target name] = {path: bytes}``."""

    data: dict[str, dict[str, dict[str, bytes]]]

    def files(self, tree: str) -> int:
        """How many ``.gcda`` files were read for ``tree``, over all targets."""
        return sum(len(v) for v in self.data.get(tree, {}).values())


__all__ = ["DEBUGFS", "KERNEL_GCOV", "Collected", "CoverageError", "GcovTree", "Target"]
