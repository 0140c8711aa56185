"""ImageRecipe: key stability and sensitivity, validation, cache paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.vm import recipe as recipe_mod
from ocfs2lab.vm.image import ASSET_INSTALL, DOCKERFILE_ASSET, UNITS_ASSET
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe, LabImage, cache_root


def test_key_is_stable_and_hex() -> None:
    a, b = ImageRecipe(), ImageRecipe()
    assert a == b
    assert a.key() == b.key()
    assert len(a.key()) == 64
    int(a.key(), 16)
    assert a.short_name == f"trixie-{a.key()[:16]}"


def test_package_order_and_duplicates_do_not_matter() -> None:
    a = ImageRecipe(packages=("kmod", "systemd", "udev"))
    b = ImageRecipe(packages=["udev", "kmod", "systemd", "kmod"])
    c = ImageRecipe(packages="udev,kmod systemd")
    assert a.packages == ("kmod", "systemd", "udev")
    assert a.key() == b.key() == c.key()


@pytest.mark.parametrize(
    "change",
    [
        {"release": "bookworm"},
        {"mirror": "http://mirror.example/debian"},
        {"packages": (*ImageRecipe().packages, "strace")},
        {"node_packages": ("ocfs2-tools",)},
        {"disk_size_mib": 4096},
        {"build_version": ImageRecipe().build_version + 1},
    ],
)
def test_every_field_changes_the_key(change: dict[str, Any]) -> None:
    assert attrs.evolve(ImageRecipe(), **change).key() != ImageRecipe().key()


def test_asset_content_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vm_assets = tmp_path / "vm" / "assets"
    node_assets = tmp_path / "node" / "assets"
    vm_assets.mkdir(parents=True)
    node_assets.mkdir(parents=True)
    (vm_assets / "fstab").write_text("one\n")
    (node_assets / "run_tests.sh").write_text("#!/bin/sh\n")
    probe_assets = tmp_path / "coverage" / "assets"
    probe_assets.mkdir(parents=True)
    (probe_assets / "o2probe.c").write_text("int main(void) { return 0; }\n")
    (vm_assets / "kernel-ocfs2lab.config").write_text("CONFIG_GCOV_KERNEL=y\n")
    monkeypatch.setattr(recipe_mod, "VM_ASSETS", vm_assets)
    monkeypatch.setattr(recipe_mod, "NODE_ASSETS", node_assets)
    monkeypatch.setattr(recipe_mod, "PROBE_ASSETS", probe_assets)
    first = ImageRecipe().key()
    assert ImageRecipe().key() == first
    (vm_assets / "fstab").write_text("two\n")
    second = ImageRecipe().key()
    assert second != first
    (node_assets / "run_tests.sh").write_text("#!/bin/sh\necho hi\n")
    third = ImageRecipe().key()
    assert third not in (first, second)
    (node_assets / "collect.sh").write_text("")
    assert ImageRecipe().key() != third
    material = ImageRecipe().key_material()
    assert set(material["assets"]) == {
        "vm/fstab",
        "node/run_tests.sh",
        "node/collect.sh",
        "coverage/o2probe.c",
    }
    # The kernel fragment counts in the kernel's key only: a new lab kernel boots the same
    # root file system.
    fourth = ImageRecipe().key()
    stock = ImageRecipe(kernel=None).key()
    kernel_key = KernelRecipe().key()
    (vm_assets / "kernel-ocfs2lab.config").write_text("CONFIG_GCOV_KERNEL=y\nCONFIG_X=m\n")
    assert KernelRecipe().key() != kernel_key
    assert ImageRecipe().key() == fourth
    assert ImageRecipe(kernel=None).key() == stock
    (probe_assets / "o2probe.c").write_text("int main(void) { return 1; }\n")
    assert ImageRecipe(kernel=None).key() != stock


def test_real_assets_are_all_used() -> None:
    """Every file in vm/assets is installed, is the units list, the Dockerfile or the kernel's
    configuration fragment."""
    used = {asset for asset, _dest, _mode in ASSET_INSTALL} | {
        UNITS_ASSET,
        DOCKERFILE_ASSET,
        recipe_mod.FRAGMENT_ASSET,
    }
    present = {p.name for p in recipe_mod.VM_ASSETS.iterdir() if p.is_file()}
    assert present == used


def test_gcov_prefix_is_set_for_containers_and_ssh_sessions() -> None:
    """Instrumented tools write their .gcda where the collector looks, in both guests."""
    assets = recipe_mod.VM_ASSETS
    assert f"ENV GCOV_PREFIX={recipe_mod.GCOV_PREFIX}\n" in (assets / DOCKERFILE_ASSET).read_text()
    sshd = (assets / "sshd-ocfs2lab.conf").read_text()
    assert f"SetEnv GCOV_PREFIX={recipe_mod.GCOV_PREFIX}\n" in sshd


def test_units_asset_is_well_formed() -> None:
    actions = {"enable", "disable", "mask", "reenable", "mask-generator"}
    entries = []
    for raw in (recipe_mod.VM_ASSETS / UNITS_ASSET).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            action, unit = line.split()
            assert action in actions, line
            entries.append(unit)
    assert entries, f"{UNITS_ASSET} lists no unit"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"release": "Trixie 13"}, "recipe.release"),
        ({"mirror": "ftp://x"}, "recipe.mirror"),
        ({"packages": ()}, "recipe.packages"),
        ({"packages": ("Bad Name",)}, "recipe.packages"),
        ({"node_packages": ("ok", "-bad")}, "recipe.node_packages"),
        ({"disk_size_mib": 100}, "recipe.disk_size_mib"),
        ({"build_version": 0}, "recipe.build_version"),
    ],
)
def test_validation(change: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        ImageRecipe(**change)  # type: ignore[arg-type]
    assert info.value.field == field


def test_cache_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OCFS2LAB_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("OCFS2LAB_CACHE")
    assert cache_root() == tmp_path / "xdg" / "ocfs2lab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "ocfs2lab"


def test_lab_image_layout(tmp_path: Path) -> None:
    image = LabImage.in_directory(tmp_path, ImageRecipe())
    assert image.root_disk == tmp_path / "root.img"
    assert image.directory == tmp_path
    assert not image.exists()
    for path in image.files():
        path.write_bytes(b"x")
    assert image.exists()
    # A lab kernel boots the same root file system: no initrd, a modules disk.
    lab = image.with_kernel(tmp_path / "k" / "bzImage", tmp_path / "k" / "modules.img")
    assert lab.initrd is None and lab.files()[-1] == tmp_path / "k" / "modules.img"
    assert not lab.exists()
    (tmp_path / "k").mkdir()
    for path in lab.files():
        path.write_bytes(b"x")
    assert lab.exists()
