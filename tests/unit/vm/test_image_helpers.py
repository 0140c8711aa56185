"""Build bookkeeping: locks, stale temporary builds, mount parsing, cache lookup."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from ocfs2lab.errors import HostError
from ocfs2lab.report import LogReporter
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm import image as image_mod
from ocfs2lab.vm.cache import (
    STALE_UNLOCKED_AGE,
    file_lock,
    mounts_under,
    remove_stale_builds,
    remove_tree,
)
from ocfs2lab.vm.image import find_image, prune_images
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
80 22 0:5 / /cache/images/.build-x/rootfs/proc rw - proc proc rw
81 22 0:6 / /cache/images/.build-x/rootfs/sys rw - sysfs sysfs rw
82 22 0:7 / /cache/images/.build-x/rootfs/dev/pts rw - devpts devpts rw
83 22 0:8 / /cache/images/.build-xy rw - tmpfs tmpfs rw
84 22 0:9 / /cache/images/.build-x/with\\040space rw - tmpfs tmpfs rw
"""


def test_mounts_under_deepest_first_and_unescaped() -> None:
    found = mounts_under(Path("/cache/images/.build-x"), MOUNTINFO)
    assert found[0] == Path("/cache/images/.build-x/rootfs/dev/pts")
    assert set(found) == {
        Path("/cache/images/.build-x/rootfs/proc"),
        Path("/cache/images/.build-x/rootfs/sys"),
        Path("/cache/images/.build-x/rootfs/dev/pts"),
        Path("/cache/images/.build-x/with space"),
    }
    assert mounts_under(Path("/elsewhere"), MOUNTINFO) == []


def test_file_lock_excludes_and_times_out(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with file_lock(lock, timeout=1, what="t"):
        with lock.open("a+") as other, pytest.raises(OSError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        started = time.monotonic()
        # flock locks belong to the open file description: a second open conflicts.
        with pytest.raises(HostError), file_lock(lock, timeout=0.3, what="t"):
            pass
        assert time.monotonic() - started < 5
    with file_lock(lock, timeout=1, what="t"):
        pass


def test_remove_stale_builds_keeps_live_ones(tmp_path: Path) -> None:
    live = tmp_path / ".build-a-1"
    dead = tmp_path / ".build-b-2"
    unlocked_old = tmp_path / ".build-c-3"
    unlocked_new = tmp_path / ".build-d-4"
    done = tmp_path / "trixie-0123"
    for d in (live, dead, unlocked_old, unlocked_new, done):
        (d / "rootfs" / "etc").mkdir(parents=True)
    (dead / ".lock").touch()
    old = time.time() - STALE_UNLOCKED_AGE - 60
    os.utime(unlocked_old, (old, old))
    with (live / ".lock").open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        removed = remove_stale_builds(tmp_path)
    assert sorted(removed) == [dead, unlocked_old]
    assert live.exists() and unlocked_new.exists() and done.exists()
    assert not dead.exists() and not unlocked_old.exists()


def test_remove_tree_of_missing_dir_is_fine(tmp_path: Path) -> None:
    remove_tree(tmp_path / "nope")  # nothing to do, and no error
    assert list(tmp_path.iterdir()) == []
    # A tree with nothing mounted below it is removed whole.
    tree = tmp_path / ".build-x-1"
    (tree / "rootfs" / "etc").mkdir(parents=True)
    (tree / "rootfs" / "etc" / "hostname").write_text("x\n")
    remove_tree(tree)
    assert not tree.exists()


def test_find_image_needs_manifest_with_matching_key(tmp_path: Path) -> None:
    recipe = ImageRecipe(kernel=None)
    directory = tmp_path / "images" / recipe.short_name
    directory.mkdir(parents=True)
    for name in ("root.img", "vmlinuz", "initrd.img"):
        (directory / name).write_bytes(b"x")
    assert find_image(recipe, cache_dir=tmp_path) is None  # no manifest: incomplete
    (directory / "manifest.json").write_text(json.dumps({"key": "other"}))
    assert find_image(recipe, cache_dir=tmp_path) is None
    (directory / "manifest.json").write_text(json.dumps({"key": recipe.key()}))
    image = find_image(recipe, cache_dir=tmp_path)
    assert image is not None and image.root_disk == directory / "root.img"
    (directory / "initrd.img").unlink()
    assert find_image(recipe, cache_dir=tmp_path) is None


def test_an_image_of_a_lab_kernel_needs_that_kernel_too(tmp_path: Path) -> None:
    recipe = ImageRecipe()
    assert recipe.kernel is not None
    directory = tmp_path / "images" / recipe.short_name
    directory.mkdir(parents=True)
    (directory / "root.img").write_bytes(b"x")  # no vmlinuz, no initrd: the kernel is apart
    (directory / "manifest.json").write_text(json.dumps({"key": recipe.key()}))
    assert find_image(recipe, cache_dir=tmp_path) is None  # its kernel is not built
    kernel = tmp_path / "kernels" / recipe.kernel.short_name()
    (kernel / "modules" / "lib" / "modules" / "6.12.117-ocfs2lab").mkdir(parents=True)
    (kernel / "bzImage").write_bytes(b"k")
    (kernel / "modules.img").write_bytes(b"m")
    manifest = {
        "key": recipe.kernel.key(),
        "release": "6.12.117-ocfs2lab",
        "build_root": "/b/linux",
        "gcc_version": "12.2.0",
        "gcov_dirs": ["fs/ocfs2"],
        "provenance": {"key": recipe.kernel.key(), "patches": []},
    }
    (kernel / "manifest.json").write_text(json.dumps(manifest))
    image = find_image(recipe, cache_dir=tmp_path)
    assert image is not None
    assert (image.kernel, image.initrd, image.modules_disk) == (
        kernel / "bzImage",
        None,
        kernel / "modules.img",
    )
    assert image.kernel_provenance["release"] == "6.12.117-ocfs2lab"
    # Another lab kernel boots the same root file system: the image's key does not change.
    other = attrs.evolve(recipe, kernel=KernelRecipe(config=("CONFIG_PRINTK_TIME=y",)))
    assert other.key() == recipe.key() and other.short_name == recipe.short_name
    assert find_image(other, cache_dir=tmp_path) is None  # that kernel is not built


def test_prune_images_keeps_wanted_and_incomplete(tmp_path: Path) -> None:
    keep = ImageRecipe()
    images = tmp_path / "images"
    for name in (keep.short_name, "trixie-old", "bookworm-old", ".build-x-1", "partial"):
        (images / name).mkdir(parents=True)
    for name in (keep.short_name, "trixie-old", "bookworm-old"):
        (images / name / "manifest.json").write_text("{}")
    (images / "trixie-old.lock").touch()
    removed = prune_images([keep], cache_dir=tmp_path)
    assert sorted(p.name for p in removed) == ["bookworm-old", "trixie-old"]
    assert sorted(p.name for p in images.iterdir()) == sorted(
        [keep.short_name, ".build-x-1", "partial"]
    )


def test_the_kernel_builds_in_the_background_and_is_cancelled_with_the_image(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The image build waits for the kernel only when it installs it; leaving early (an
    error in debootstrap, Ctrl-C) cancels the compile, and a kernel error reaches the image
    build's thread."""
    started = threading.Event()
    seen: list[threading.Event] = []

    def slow_kernel(recipe: object, **kwargs: Any) -> object:
        cancel = kwargs["cancel"]
        seen.append(cancel)
        started.set()
        if not cancel.wait(30):
            return "kernel"
        raise image_mod.KernelBuildError("compile", "cancelled")

    monkeypatch.setattr(image_mod, "build_kernel", slow_kernel)
    recipe = ImageRecipe().kernel
    with image_mod._KernelInBackground(recipe, tmp_path, LogReporter(), LocalRunner()) as bg:
        assert started.wait(10)
        assert bg.thread is not None and bg.thread.is_alive()
    assert seen[0].is_set() and not bg.thread.is_alive()
    with pytest.raises(image_mod.KernelBuildError, match="cancelled"):
        bg.result()

    def broken_kernel(recipe: object, **kwargs: Any) -> object:
        raise image_mod.KernelBuildError("configure", "CONFIG_X: asked y, got n")

    monkeypatch.setattr(image_mod, "build_kernel", broken_kernel)
    background = image_mod._KernelInBackground(recipe, tmp_path, LogReporter(), LocalRunner())
    with background, pytest.raises(image_mod.KernelBuildError, match="CONFIG_X"):
        background.result()
    with image_mod._KernelInBackground(None, tmp_path, LogReporter(), LocalRunner()) as bg:
        assert bg.result() is None and bg.thread is None
