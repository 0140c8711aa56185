"""Benchmark of the kernel under test: full build, incremental rebuild, edit to booted cluster.

Prints, in one run:

* a full build of a configuration the cache has not seen (a work tree of its own: a unique
  ``CONFIG_DEFAULT_HOSTNAME``), from the unpacked source to an installed kernel (skipped with
  ``--no-full``: the time it takes here is in docs/facts.md, "The kernel under test");
* an incremental rebuild after a one-line change in ``fs/ocfs2`` (the example's 5 s delay in
  the o2dlm recovery master, with a unique comment): files compiled, phases, seconds;
* the time from that edit to a booted 3-VM cluster on the new kernel (rebuild + boot + o2cb,
  mkfs and mounts), the goal being 3 minutes or less;
* the cache's sizes: the base work tree, the unpacked source, each kernel, the root image.

Everything the benchmark builds is removed afterwards; the base kernel and image stay.

    .venv/bin/python benchmarks/bench_kernel.py [--no-full] [--nodes 3]
"""

from __future__ import annotations

import argparse
import logging
import secrets
import tempfile
import time
from pathlib import Path

from ocfs2lab.clusters import VmCluster
from ocfs2lab.vm.image import build_image, with_kernel
from ocfs2lab.vm.inventory import cache_entries, disk_usage, remove_entry
from ocfs2lab.vm.kernel import build_kernel, work_trees_dir
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe

ROOT = Path(__file__).resolve().parents[1]
PATCH = ROOT / "examples" / "patches" / "0001-o2dlm-delay-recovery-master.patch"


def gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--no-full", action="store_true", help="skip the full build")
    parser.add_argument("--nodes", type=int, default=3, help="VMs of the booted cluster")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    token = secrets.token_hex(4)

    started = time.monotonic()
    base_image = build_image(ImageRecipe())
    print(f"base kernel and image ready (cached or built): {time.monotonic() - started:.1f} s")

    if not args.no_full:
        recipe = KernelRecipe(config=[f'CONFIG_DEFAULT_HOSTNAME="bench{token}"'])
        t0 = time.monotonic()
        full = build_kernel(recipe)
        seconds = time.monotonic() - t0
        manifest = full.manifest()
        print(
            f"full build (new configuration): {seconds:.1f} s, "
            f"{manifest['files_compiled']} files compiled, phases {manifest['phase_seconds']}"
        )
        work = work_trees_dir() / recipe.work_name()
        print(f"  its work tree (sources and objects): {gib(disk_usage(work))}")
        remove_entry(full.directory)
        remove_entry(work)

    with tempfile.TemporaryDirectory() as scratch:
        patch = Path(scratch) / PATCH.name
        patch.write_text(PATCH.read_text().replace("must see)", f"must see, {token})"))
        edit = time.monotonic()  # the researcher saved the file
        recipe = KernelRecipe(patches=[patch])
        kernel = build_kernel(recipe)
        rebuilt = time.monotonic() - edit
        manifest = kernel.manifest()
        print(
            f"incremental rebuild after a one-line fs/ocfs2 change: {rebuilt:.1f} s, "
            f"compiled {manifest['compiled']}, bzImage changed: "
            f"{manifest['reused'].get('bzimage_changed')}, modules changed: "
            f"{manifest['reused'].get('modules_changed')}, phases {manifest['phase_seconds']}"
        )
        image = with_kernel(base_image, kernel)
        t1 = time.monotonic()
        with VmCluster(args.nodes, name="benchkernel", image=image) as cluster:
            up = time.monotonic() - t1
            status = cluster.status()
            release = cluster.kernel_provenance().get("release")
        print(f"{args.nodes}-VM cluster up on it (boot, o2cb, mkfs, mounts): {up:.1f} s ({status})")
        print(f"edit to booted cluster: {rebuilt + up:.1f} s (goal 180 s); kernel {release}")
        own = sum(
            p.stat().st_blocks * 512
            for p in kernel.directory.rglob("*")
            if p.is_file() and not p.is_symlink() and p.stat().st_nlink == 1
        )
        print(
            f"  the patched kernel: {gib(disk_usage(kernel.directory))} in its directory, of "
            f"which {own / (1 << 20):.1f} MiB its own (the rest hard-linked to the base)"
        )
        remove_entry(kernel.directory)

    print("cache:")
    for entry in cache_entries():
        print(f"  {entry.kind:9} {entry.name:40} {gib(entry.size_bytes)}  {entry.detail}")


if __name__ == "__main__":
    main()
