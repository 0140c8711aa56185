"""The public API: a small root, subpackages with their own ``__all__``, old names kept with a
warning, every exception in ``ocfs2lab.errors``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings
from pathlib import Path

import pytest

import ocfs2lab
from ocfs2lab import clusters, doctor, errors, observe

SUBPACKAGES = (
    "clusters",
    "coverage",
    "experiment",
    "formats",
    "fs",
    "host",
    "node",
    "observe",
    "runner",
    "spec",
    "vm",
)


def test_root_names_resolve_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ocfs2lab.__all__:
            assert getattr(ocfs2lab, name) is not None, name
    assert 25 <= len(ocfs2lab.__all__) <= 38
    assert ocfs2lab.__version__ and ocfs2lab.__version__[0].isdigit()


def test_the_seeds_object_model_is_at_the_root() -> None:
    for name in ("Host", "DrbdResource", "O2cbCluster", "Node", "HeartbeatRegion", "OcfsVolume"):
        assert name in ocfs2lab.__all__
    for cls in (ocfs2lab.DrbdResource, ocfs2lab.O2cbCluster, ocfs2lab.OcfsVolume, ocfs2lab.Cluster):
        assert hasattr(cls, "__enter__") and hasattr(cls, "__exit__")
        assert hasattr(cls, "start") and hasattr(cls, "close")
    assert ocfs2lab.diagnose is doctor.diagnose


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_layer_says_what_it_is_and_exports_its_names(package: str) -> None:
    module = importlib.import_module(f"ocfs2lab.{package}")
    assert module.__doc__ and len(module.__doc__.strip()) > 40, package
    assert module.__all__, package
    for name in module.__all__:
        assert getattr(module, name) is not None, f"ocfs2lab.{package}.{name}"


def test_old_root_names_still_work_with_a_warning_naming_the_new_home() -> None:
    with pytest.warns(
        DeprecationWarning, match=r"ocfs2lab\.WriteRecorder moved to ocfs2lab\.observe"
    ):
        old = ocfs2lab.WriteRecorder
    assert old is observe.WriteRecorder
    with pytest.warns(DeprecationWarning, match="ocfs2lab.errors"):
        assert ocfs2lab.HostError is errors.HostError
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = ocfs2lab.Nothing


def test_old_module_paths_still_work_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="ocfs2lab.clusters.vms"):
        old_vm = importlib.import_module("ocfs2lab.kernel_cluster").VmCluster
    assert old_vm is clusters.VmCluster
    with pytest.warns(DeprecationWarning, match="ocfs2lab.clusters.containers"):
        old_cluster = importlib.import_module("ocfs2lab.cluster").Cluster
    assert old_cluster is ocfs2lab.Cluster


def test_every_exception_lives_in_errors() -> None:
    """An exception class defined anywhere in the library is defined in ``ocfs2lab.errors``
    (other modules may re-export it under its old name)."""
    elsewhere = []
    for info in pkgutil.walk_packages(ocfs2lab.__path__, "ocfs2lab."):
        if info.name.startswith(("ocfs2lab.pytest_", "ocfs2lab.cluster", "ocfs2lab.kernel_")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and info.name != "ocfs2lab.errors"
            ):
                elsewhere.append(f"{info.name}.{name}")
    assert elsewhere == []
    assert all(issubclass(getattr(errors, n), errors.Ocfs2LabError) for n in errors.__all__)


def test_the_references_root_table_lists_exactly_the_root() -> None:
    index = Path(__file__).resolve().parents[2] / "docs" / "reference" / "index.md"
    text = index.read_text()
    table = text[text.index("## The root") : text.index("## The layers")]
    rows = [line.split("|")[2] for line in table.splitlines() if line.startswith("| ")][1:]
    listed = {name for row in rows for name in re.findall(r"`(\w+)`", row)}
    assert listed == set(ocfs2lab.__all__)
