"""The public API: every name in ``__all__`` exists, and the model's classes are there."""

from __future__ import annotations

import ocfs2lab
from ocfs2lab import doctor


def test_all_names_resolve() -> None:
    for name in ocfs2lab.__all__:
        assert getattr(ocfs2lab, name) is not None, name


def test_model_classes_are_exported() -> None:
    for name in (
        "Host",
        "DrbdResource",
        "O2cbCluster",
        "Node",
        "HeartbeatRegion",
        "OcfsVolume",
        "Cluster",
        "LabVm",
    ):
        assert name in ocfs2lab.__all__


def test_handles_are_context_managers() -> None:
    for cls in (ocfs2lab.DrbdResource, ocfs2lab.O2cbCluster, ocfs2lab.OcfsVolume, ocfs2lab.Cluster):
        assert hasattr(cls, "__enter__") and hasattr(cls, "__exit__")


def test_doctor_is_exported() -> None:
    for name in ("Check", "DoctorReport", "diagnose"):
        assert name in ocfs2lab.__all__
        assert getattr(ocfs2lab, name) is getattr(doctor, name)
