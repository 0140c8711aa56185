"""The lab kernel's recipe and configuration checks (the build itself runs in the lab tests)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.vm.kernel import KernelBuild, config_mismatches, find_kernel, parse_config
from ocfs2lab.vm.recipe import DEFAULT_GCOV_DIRS, ImageRecipe, KernelRecipe


def test_the_fragment_parses_and_asks_for_gcov_of_ocfs2_and_drbd() -> None:
    wanted = parse_config(KernelRecipe().fragment())
    assert wanted["CONFIG_GCOV_KERNEL"] == "y"
    assert wanted["CONFIG_GCOV_PROFILE_ALL"] == "n"
    assert wanted["CONFIG_DEBUG_FS"] == "y"
    assert wanted["CONFIG_OCFS2_FS"] == "m"
    assert wanted["CONFIG_BLK_DEV_DRBD"] == "m"
    # Docker's NAT needs these (dockerd fails on `iptables -t nat -N DOCKER` without them).
    for name in ("CONFIG_NFT_COMPAT", "CONFIG_NF_NAT", "CONFIG_BRIDGE_NETFILTER"):
        assert wanted[name] == "m"
    lines = [x for x in KernelRecipe().fragment().splitlines() if x.startswith("CONFIG_")]
    assert len(lines) == len({x.split("=")[0] for x in lines}), "an option is listed twice"


def test_config_mismatches_name_each_option() -> None:
    wanted = parse_config('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x"\n')
    actual = parse_config('CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_D="y"\n')
    assert config_mismatches(wanted, actual) == [
        "CONFIG_C: asked n, got y",
        'CONFIG_D: asked "x", got "y"',
    ]
    assert config_mismatches({"CONFIG_E": "y"}, {}) == ["CONFIG_E: asked y, got n"]
    assert config_mismatches({"CONFIG_E": "n"}, {}) == []


def test_recipe_key_and_validation() -> None:
    a = KernelRecipe()
    assert a.key() == KernelRecipe(jobs=1).key()  # make -j does not change the kernel
    assert a.short_name().startswith("6.12-")
    assert a.gcov_dirs == DEFAULT_GCOV_DIRS
    assert KernelRecipe(gcov_dirs=["fs/ocfs2/"]).gcov_dirs == ("fs/ocfs2",)
    assert KernelRecipe(gcov_dirs=["fs/ocfs2"]).key() != a.key()
    assert KernelRecipe.for_release("bookworm").source_package == "linux-source-6.1"
    for change, name in [
        ({"source_package": "linux-6.12"}, "kernel.source_package"),
        ({"gcov_dirs": ()}, "kernel.gcov_dirs"),
        ({"gcov_dirs": ("../etc",)}, "kernel.gcov_dirs"),
        ({"jobs": 0}, "kernel.jobs"),
        ({"config": ("CONFIG_X=maybe",)}, "kernel.config"),
        ({"config": ("X=y",)}, "kernel.config"),
        ({"profile": "fast"}, "kernel.profile"),
        ({"patches": ("/nonexistent/fix.patch",)}, "kernel.patches"),
        ({"tree": "/nonexistent/linux"}, "kernel.tree"),
    ]:
        with pytest.raises(SpecError) as err:
            KernelRecipe(**change)  # type: ignore[arg-type]
        assert err.value.field == name
    with pytest.raises(SpecError) as err:
        KernelRecipe.for_release("sid")
    assert (err.value.field, err.value.value) == ("kernel.release", "sid")


def test_image_recipes_build_their_kernel_or_take_debians() -> None:
    built = ImageRecipe()
    assert built.kernel == KernelRecipe()
    assert "linux-image-amd64" not in built.packages
    stock = ImageRecipe(kernel=None)
    assert "linux-image-amd64" in stock.packages
    assert stock.key() != built.key()
    # The root file system does not depend on which lab kernel boots it.
    other_kernel = attrs.evolve(built, kernel=KernelRecipe(gcov_dirs=("fs/ocfs2",)))
    assert other_kernel.key() == built.key()
    with pytest.raises(SpecError, match="kernel package"):
        ImageRecipe(packages=(*built.packages, "linux-image-amd64"))
    with pytest.raises(SpecError, match="kernel is None"):
        ImageRecipe(kernel=None, packages=built.packages)


def test_a_kernel_is_found_only_when_complete(tmp_path: Path) -> None:
    recipe = KernelRecipe()
    directory = tmp_path / "kernels" / recipe.short_name()
    (directory / "modules" / "lib" / "modules" / "6.12.117-ocfs2lab").mkdir(parents=True)
    assert find_kernel(recipe, cache_dir=tmp_path) is None  # no manifest yet
    manifest = {
        "key": recipe.key(),
        "release": "6.12.117-ocfs2lab",
        "build_root": "/b/linux",
        "gcc_version": "12.2.0",
        "gcov_dirs": list(recipe.gcov_dirs),
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    assert find_kernel(recipe, cache_dir=tmp_path) is None  # no bzImage
    (directory / "bzImage").write_bytes(b"kernel")
    assert find_kernel(recipe, cache_dir=tmp_path) is None  # no modules disk
    (directory / "modules.img").write_bytes(b"modules")
    found = find_kernel(recipe, cache_dir=tmp_path)
    assert isinstance(found, KernelBuild)
    assert found.release == "6.12.117-ocfs2lab"
    assert found.gcov_tree == directory / "gcov"
    other = KernelRecipe(gcov_dirs=("fs/ocfs2",))
    assert KernelBuild.load(directory, other.key()) is None  # another recipe's key
