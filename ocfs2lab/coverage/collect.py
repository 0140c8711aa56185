"""Collecting gcov data: from the lab's kernels (debugfs) and from instrumented tools.

A [`Coverage`][ocfs2lab.coverage.collect.Coverage] knows the builds
([`GcovTree`][ocfs2lab.coverage.tree.GcovTree]) and the targets (kernels and tool runners: the lab
host or VM nodes, node containers) and does the three things a run needs:
[`Coverage.reset`][ocfs2lab.coverage.collect.Coverage.reset] before it,
[`Coverage.read`][ocfs2lab.coverage.collect.Coverage.read] after it, and
[`Coverage.report`][ocfs2lab.coverage.collect.Coverage.report]. The kernel's ``.gcda`` files are not
ordinary files (debugfs says their size is 0): a small script of the lab reads each one whole in the
guest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ocfs2lab.coverage.report import CoverageReport, make_report
from ocfs2lab.coverage.tree import (
    DEBUGFS,
    KERNEL_GCOV,
    Collected,
    CoverageError,
    GcovTree,
    Target,
)
from ocfs2lab.formats.gcda import parse_gcda_dump
from ocfs2lab.vm.kernel import KernelBuild
from ocfs2lab.vm.recipe import LabImage

#: The guest-side reader of ``.gcda`` files (sent to ``python3 -`` on stdin).
DUMP_SCRIPT = Path(__file__).parent / "assets" / "gcda_dump.py"


def kernel_tree_of(image: LabImage) -> GcovTree | None:
    """The gcov tree of the kernel ``image`` boots, or ``None`` for Debian's kernel."""
    if image.recipe.kernel is None or image.modules_disk is None:
        return None
    kernel = KernelBuild.load(image.kernel.parent)
    if kernel is None:
        raise CoverageError(
            f"the kernel of {image.directory} is not in the cache any more",
            hint="build the lab image again (ocfs2lab image build)",
        )
    return GcovTree.of_kernel(kernel)


def dump(target: Target, root: str, *, timeout: float = 600) -> dict[str, bytes]:
    """Every ``.gcda`` under ``root`` on ``target``, read whole."""
    result = target.run(
        ["python3", "-", root], input=DUMP_SCRIPT.read_text(), timeout=timeout, check=True
    )
    return parse_gcda_dump(result.stdout)


def check_kernel(target: Target, where: str) -> None:
    """Mount debugfs when needed and make sure the kernel has gcov.

    Raises:
        CoverageError: The kernel of ``target`` has no ``/sys/kernel/debug/gcov``.
    """
    target.run(
        ["sh", "-c", f"mountpoint -q {DEBUGFS} || mount -t debugfs debugfs {DEBUGFS}"],
        check=False,
        timeout=60,
    )
    if target.run(["test", "-d", KERNEL_GCOV], check=False, timeout=60).exit_code != 0:
        release = target.run(["uname", "-r"], check=False, timeout=60).stdout.strip()
        raise CoverageError(
            f"{where}: kernel {release} has no gcov ({KERNEL_GCOV} is absent)",
            hint="boot the lab's own kernel (the default ImageRecipe builds it with gcov); "
            "Debian's kernel (ImageRecipe(kernel=None)) has no coverage",
        )


def _targets(value: Mapping[str, Target]) -> dict[str, Target]:
    return dict(value)


def _trees(value: Iterable[GcovTree]) -> tuple[GcovTree, ...]:
    return tuple(value)


@attrs.define
class Coverage:
    """Coverage of one lab: the kernels it runs and the instrumented tools of its nodes.

    Attributes:
        kernel: The kernel's gcov tree (``None``: no kernel coverage).
        kernel_targets: ``{name: host or node}`` each running that kernel.
        tools: Instrumented builds whose data the tool targets hold.
        tool_targets: ``{name: host or node or container}`` running those tools.
    """

    kernel: GcovTree | None
    kernel_targets: dict[str, Target] = attrs.field(converter=_targets)
    tools: tuple[GcovTree, ...] = attrs.field(default=(), converter=_trees)
    tool_targets: dict[str, Target] = attrs.field(factory=dict, converter=_targets)

    def check(self) -> None:
        """Make sure every kernel target has gcov (mounting debugfs when needed).

        Raises:
            CoverageError: One has not, or there is nothing to measure.
        """
        if self.kernel is None and not self.tools:
            raise CoverageError(
                "nothing to measure: no gcov kernel and no instrumented tools",
                hint="boot the lab's own kernel, or pass tools=[GcovTree.of_build(...)]",
            )
        if self.kernel is not None:
            for name, target in self.kernel_targets.items():
                check_kernel(target, name)

    def reset(self) -> None:
        """Zero the kernels' counters and remove the tools' data on every target."""
        self.check()
        if self.kernel is not None:
            for target in self.kernel_targets.values():
                target.run(["sh", "-c", f"echo 1 > {KERNEL_GCOV}/reset"], timeout=120)
        roots = sorted({tree.guest_root for tree in self.tools})
        for target in self.tool_targets.values():
            for root in roots:
                target.run(["rm", "-rf", "--one-file-system", root], timeout=120)

    def read(self) -> Collected:
        """Read the ``.gcda`` files of every target (kernels: whole, from debugfs)."""
        self.check()
        data: dict[str, dict[str, dict[str, bytes]]] = {}
        if self.kernel is not None:
            root = _join(self.kernel.guest_root, self.kernel.build_root)
            data[self.kernel.name] = {
                name: dump(target, root) for name, target in self.kernel_targets.items()
            }
        for name, target in self.tool_targets.items():
            for root in sorted({tree.guest_root for tree in self.tools}):
                if target.run(["test", "-d", root], check=False, timeout=60).exit_code != 0:
                    continue
                files = dump(target, root)
                for tree in self.tools:
                    mine = {p: d for p, d in files.items() if tree.relative(p) is not None}
                    data.setdefault(tree.name, {})[name] = mine
        return Collected(data)

    def report(self, directory: str | Path, **options: Any) -> CoverageReport:
        """Read the data and write the report into ``directory`` (see
        [`make_report`][ocfs2lab.coverage.report.make_report] for ``options``).

        Returns:
            The [`CoverageReport`][ocfs2lab.coverage.report.CoverageReport].
        """
        trees = ([self.kernel] if self.kernel is not None else []) + list(self.tools)
        return make_report(self.read(), trees, Path(directory), **options)


def _join(guest_root: str, build_root: str) -> str:
    return guest_root.rstrip("/") + "/" + build_root.strip("/")


__all__ = ["DUMP_SCRIPT", "Coverage", "check_kernel", "dump", "kernel_tree_of"]
