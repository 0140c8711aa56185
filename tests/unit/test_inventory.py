"""The cache inventory and its pruning, on directories laid out as builds leave them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.vm.inventory import cache_entries, disk_usage, prune_cache, remove_entry
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe


def made(path: Path, age_days: float, size: int = 4096) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"release": "6.12.117-ocfs2lab"}))
    (path / "blob").write_bytes(b"x" * size)
    when = time.time() - age_days * 86400
    os.utime(path / "manifest.json", (when, when))
    return path


def test_list_and_prune_by_age_and_count(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    default = KernelRecipe()
    base = made(kernels / default.short_name(), 30)
    old = made(kernels / "6.12-00000000000000aa", 20)
    new = made(kernels / "6.12-00000000000000bb", 1)
    newer = made(kernels / "6.12-00000000000000cc", 0.5)
    image = made(tmp_path / "images" / ImageRecipe().short_name, 40)
    entries = cache_entries(tmp_path)
    assert [e.name for e in entries if e.kind == "kernel"] == [
        newer.name,
        new.name,
        old.name,
        base.name,
    ]
    assert {e.name for e in entries if e.protected} == {base.name, image.name}
    assert all(e.size_bytes >= 4096 for e in entries)

    with pytest.raises(SpecError, match="say which"):
        prune_cache(cache_dir=tmp_path)
    would = prune_cache(older_than=7 * 86400, cache_dir=tmp_path, dry_run=True)
    assert [e.name for e in would] == [old.name] and old.exists()
    gone = prune_cache(keep=1, cache_dir=tmp_path)
    # The newest kernel is kept; the default kernel and image are never pruned.
    assert sorted(e.name for e in gone) == sorted([new.name, old.name])
    assert newer.exists() and base.exists() and image.exists()
    assert not new.exists() and not old.exists()


def test_what_a_process_holds_open_is_kept(tmp_path: Path) -> None:
    busy = made(tmp_path / "kernels" / "6.12-00000000000000dd", 90)
    idle = made(tmp_path / "kernels" / "6.12-00000000000000ee", 90)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; f=open(sys.argv[1]); time.sleep(60)",
            str(busy / "blob"),
        ],
    )
    try:
        deadline = time.monotonic() + 30
        while not any(e.in_use for e in cache_entries(tmp_path) if e.name == busy.name):
            assert time.monotonic() < deadline, "the holder never opened its file"
            time.sleep(0.1)
        gone = prune_cache(older_than=86400, cache_dir=tmp_path)
        assert [e.name for e in gone] == [idle.name]
        assert busy.exists()
    finally:
        holder.kill()
        holder.wait()


def test_disk_usage_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"y" * 65536)
    os.link(tmp_path / "a", tmp_path / "b")
    assert 65536 <= disk_usage(tmp_path) < 2 * 65536


def test_a_kernel_sharing_files_with_another_owns_only_the_rest(tmp_path: Path) -> None:
    base = made(tmp_path / "kernels" / "6.12-00000000000000aa", 2, size=1 << 20)
    other = made(tmp_path / "kernels" / "6.12-00000000000000bb", 1, size=4096)
    os.link(base / "blob", other / "shared-bzImage")  # as a module-only rebuild leaves it
    found = {e.name: e for e in cache_entries(tmp_path)}
    assert found[other.name].size_bytes >= (1 << 20)
    assert found[other.name].own_bytes < (1 << 20)  # removing it frees only its own files
    assert found[base.name].own_bytes < (1 << 20)


def test_saved_states_are_listed_with_their_image_and_go_with_their_kernel(
    tmp_path: Path,
) -> None:
    image = made(tmp_path / "images" / ImageRecipe().short_name, 1)
    kernel = made(tmp_path / "kernels" / "6.12-00000000000000ab", 1)
    (kernel / "bzImage").write_bytes(b"k")
    slots = []
    for node in ("node1", "node2"):
        slot = image / "states" / f"{node}-0123456789abcdef"
        slot.mkdir(parents=True)
        (slot / "ram").write_bytes(b"r" * 8192)
        (slot / "saved.json").write_text(
            json.dumps(
                {
                    "hostname": node,
                    "memory_mib": 1024,
                    "saved_at": time.time(),
                    "inputs": {"root disk": str(image / "blob"), "kernel": str(kernel / "bzImage")},
                }
            )
        )
        slots.append(slot)
    entries = cache_entries(tmp_path)
    states = [e for e in entries if e.kind == "state"]
    assert sorted(e.name for e in states) == [f"{image.name}/{s.name}" for s in slots]
    assert all(f"kernel {kernel.name}" in e.detail and "1024 MiB" in e.detail for e in states)
    image_entry = next(e for e in entries if e.kind == "image")
    assert image_entry.size_bytes >= 2 * 8192  # the image's size holds its states
    # Nothing is old or beyond the count: the states stay, until their kernel goes.
    assert prune_cache(keep=10, cache_dir=tmp_path) == []
    (kernel / "bzImage").unlink()  # as if the kernel were rebuilt elsewhere: orphans
    assert sorted(e.name for e in prune_cache(keep=10, cache_dir=tmp_path, dry_run=True)) == [
        f"{image.name}/{s.name}" for s in slots
    ]
    (kernel / "bzImage").write_bytes(b"k")
    remove_entry(kernel)  # the kernel goes, and the states saved with it
    assert not kernel.exists() and image.exists()
    assert not any(s.exists() for s in slots)
