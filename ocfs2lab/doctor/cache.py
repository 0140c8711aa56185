"""The lab's cache on this machine: free space for it, the cached lab image, the built lab kernel.

[`disk_check`][ocfs2lab.doctor.cache.disk_check] judges the free space ``df`` reports
([`parse_df`][ocfs2lab.doctor.cache.parse_df]);
[`image_check`][ocfs2lab.doctor.cache.image_check] whether the image of the default recipe is
built; [`lab_kernel_check`][ocfs2lab.doctor.cache.lab_kernel_check] whether its kernel is built,
or can be built here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import frozen

from ocfs2lab.doctor.programs import first_line, run_program
from ocfs2lab.doctor.report import Check
from ocfs2lab.errors import ParseError
from ocfs2lab.runner.base import Runner
from ocfs2lab.vm.image import find_image, images_dir, read_manifest
from ocfs2lab.vm.kernel import KernelBuild, find_kernel, kernel_build_missing
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe, LabImage

__all__ = [
    "DISK_MISSING_BYTES",
    "DISK_WARN_BYTES",
    "GIB",
    "DfRow",
    "diagnose_disk_space",
    "diagnose_image_cache",
    "diagnose_lab_kernel",
    "disk_check",
    "image_check",
    "lab_kernel_check",
    "nearest_directory",
    "parse_df",
]

GIB = 1024**3
#: Free space at the image cache below which the disk check warns / reports ``missing``. The
#: image takes about 1.2 GB on disk (an 8 GiB sparse file); each VM's overlay grows from there.
DISK_WARN_BYTES = 4 * GIB
DISK_MISSING_BYTES = 2 * GIB


@frozen
class DfRow:
    """One file system as ``df -P`` reports it.

    Attributes:
        filesystem: The device or source.
        total_bytes: Size.
        used_bytes: Used.
        available_bytes: Free for unprivileged users.
        mount_point: Where it is mounted.
    """

    filesystem: str
    total_bytes: int
    used_bytes: int
    available_bytes: int
    mount_point: str


_DF_UNIT = re.compile(r"^(\d+)([KMG]?)-blocks$")
_DF_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_df(text: str) -> DfRow:
    """The one file system of ``df -P [-k] -- PATH`` output.

    Raises:
        ParseError: ``text`` is not POSIX ``df`` output for one file system.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 2 or not lines[0].startswith("Filesystem"):
        raise ParseError("df -P", "expected a header and one line", text=text)
    header = lines[0].split()
    unit = _DF_UNIT.match(header[1]) if len(header) > 1 else None
    if unit is None:
        raise ParseError("df -P", "no N-blocks column in the header", line=1, text=lines[0])
    block = int(unit.group(1)) * _DF_UNITS[unit.group(2)]
    fields = lines[1].split(None, 5)
    if len(fields) != 6 or not all(f.isdigit() for f in fields[1:4]):
        raise ParseError("df -P", "expected six columns", line=2, text=lines[1])
    size, used, avail = (int(f) * block for f in fields[1:4])
    return DfRow(fields[0], size, used, avail, fields[5])


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def disk_check(cache: Path, measured_at: Path, available_bytes: int) -> Check:
    """Judge the free space for the image cache ``cache`` (measured at ``measured_at``, its
    nearest existing directory)."""
    where = (
        str(cache)
        if measured_at == cache
        else f"{cache} (not created yet; measured at {measured_at})"
    )
    found = f"{_gib(available_bytes)} free for the image cache {where}"
    fix = (
        "free space on that file system, or set OCFS2LAB_CACHE to a directory on a "
        f"larger one (at least {_gib(DISK_WARN_BYTES)} free)"
    )
    if available_bytes < DISK_MISSING_BYTES:
        return Check(
            "disk-space",
            "missing",
            found,
            f"below {_gib(DISK_MISSING_BYTES)}: building the image (~1.2 GB) or running VMs "
            "(each writes an overlay) can fill the disk",
            fix,
        )
    if available_bytes < DISK_WARN_BYTES:
        return Check(
            "disk-space",
            "warn",
            found,
            f"below {_gib(DISK_WARN_BYTES)}: enough for the image (~1.2 GB), little room for "
            "VM overlays and a rebuild",
            fix,
        )
    return Check(
        "disk-space", "ok", found, "room for the lab image (~1.2 GB) and the VMs' overlays"
    )


def nearest_directory(path: Path) -> Path:
    """``path`` or its nearest existing ancestor that is a directory."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def diagnose_disk_space(runner: Runner, cache: Path) -> Check:
    """Ask ``df`` for the free space at ``cache`` (or its nearest existing directory) and
    judge it."""
    measured_at = nearest_directory(cache)
    result, _ = run_program(runner, ["df", "-P", "-k", "--", str(measured_at)])
    if not result.ok:
        return Check(
            "disk-space",
            "error",
            f"`{result.command_line}` failed ({result.exit_code}): "
            f"{first_line(result.stderr or result.stdout)}",
            "free space for the image cache is unknown",
            "apt-get install coreutils",
        )
    return disk_check(cache, measured_at, parse_df(result.stdout).available_bytes)


def image_check(
    recipe: ImageRecipe,
    images: Path,
    image: LabImage | None,
    manifest: Mapping[str, object] | None = None,
    others: Sequence[str] = (),
) -> Check:
    """Judge the image cache: is the image of ``recipe`` built?

    Args:
        recipe: The recipe lab machines boot by default.
        images: The cache's image directory.
        image: The built image of ``recipe`` ([`find_image`][ocfs2lab.vm.image.find_image]), if any.
        manifest: Its ``manifest.json``.
        others: Names of the other built images in ``images``.
    """
    if image is not None:
        info = manifest or {}
        details = ", ".join(
            f"{label} {info[key]}"
            for key, label in (("kernel_version", "kernel"), ("built_at", "built"))
            if info.get(key)
        )
        return Check(
            "image-cache",
            "ok",
            f"{recipe.release} lab image {image.directory}" + (f" ({details})" if details else ""),
            "lab VMs boot from it at once; nothing to build",
        )
    found = f"no {recipe.release} lab image of the current recipe ({images / recipe.short_name})"
    if others:
        found += f"; other images there: {', '.join(others)}"
    return Check(
        "image-cache",
        "warn",
        found,
        "the first lab VM builds it (once; needs root and the Debian mirror; how long: "
        "docs/facts.md, First run); "
        "images of other keys come from other releases or older recipes",
        "ocfs2lab image build (as root)",
    )


def diagnose_image_cache(cache: Path, recipe: ImageRecipe) -> tuple[Check, LabImage | None]:
    """Look for the built image of ``recipe`` in ``cache`` and judge it.

    Returns:
        The check, and the image (``None`` when it is not built).
    """
    image = find_image(recipe, cache_dir=cache)
    images = images_dir(cache)
    manifest: dict[str, object] | None = None
    if image is not None:
        with contextlib.suppress(OSError, ValueError):
            manifest = read_manifest(image)
    others = (
        sorted(
            p.name
            for p in images.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name != recipe.short_name
            if (p / "manifest.json").exists()
        )
        if images.is_dir()
        else []
    )
    return image_check(recipe, images, image, manifest, others), image


def lab_kernel_check(
    recipe: KernelRecipe | None, kernel: KernelBuild | None, missing: Sequence[str]
) -> Check:
    """Judge the lab kernel: built, buildable here, or not.

    Args:
        recipe: The kernel the default image builds (``None``: Debian's kernel).
        kernel: Its cached build, if any.
        missing: Debian packages a build lacks on this machine.
    """
    if recipe is None:
        return Check("lab-kernel", "ok", "Debian's packaged kernel", "no coverage of the kernel")
    if kernel is not None:
        return Check(
            "lab-kernel",
            "ok",
            f"{kernel.release} built with gcov of {', '.join(kernel.gcov_dirs)} "
            f"({kernel.directory}, GCC {kernel.gcc_version})",
            "lab VMs boot it; coverage reports read its counters",
        )
    meaning = (
        f"the first lab image build compiles it from {recipe.source_package}, once: the "
        "longest step of a first run (how long: docs/facts.md, First run)"
    )
    if missing:
        return Check(
            "lab-kernel",
            "missing",
            f"not built, and a build lacks: {', '.join(missing)}",
            meaning,
            f"apt-get install {' '.join(missing)}",
        )
    return Check("lab-kernel", "warn", "not built yet", meaning, "ocfs2lab image build (as root)")


def diagnose_lab_kernel(cache: Path) -> Check:
    """Look for the built lab kernel of the default image in ``cache`` and judge it."""
    recipe = ImageRecipe().kernel
    kernel = find_kernel(recipe, cache_dir=cache) if recipe is not None else None
    return lab_kernel_check(recipe, kernel, kernel_build_missing())
