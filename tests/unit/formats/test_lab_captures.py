"""Outputs captured in the lab VM parse as the library expects."""

from __future__ import annotations

from pathlib import Path

from ocfs2lab.formats.drbd_res import DrbdSyntax
from ocfs2lab.formats.o2cb import parse_cluster_status
from ocfs2lab.formats.proc_drbd import parse_proc_drbd

DATA = Path(__file__).resolve().parents[2] / "data"


def test_proc_drbd_captured_in_lab_vm() -> None:
    info = parse_proc_drbd(
        (DATA / "kernel/proc-drbd/lab-vm-captured-8.4.11-primary.txt").read_text()
    )
    assert info.version == (8, 4, 11)
    assert info.syntax is DrbdSyntax.V84
    dev = info.device(0)
    assert dev is not None
    assert (dev.cs, dev.role, dev.disk) == ("StandAlone", "Primary", "UpToDate")
    assert dev.flags == "r----s"
    counters = dev.counters
    assert counters is not None
    assert (counters.ns, counters.dw, counters.al, counters.ep) == (0, 0, 8, 1)
    assert (counters.wo, counters.oos) == ("f", 1048508)


def test_cluster_status_captured_in_lab_vm() -> None:
    status = parse_cluster_status(
        (DATA / "ocfs2-tools/cluster-status.lab-vm-online.txt").read_text()
    )
    assert status.online
    assert status.cluster == "lab"
