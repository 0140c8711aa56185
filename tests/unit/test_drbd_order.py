"""DrbdResource runs its steps in the seed's order and undoes them in reverse.

The order only: the real capability is tested in the lab VM (tests/lab).
"""

from __future__ import annotations

import pytest

from ocfs2lab.errors import LifecycleError, OwnershipError
from ocfs2lab.host.base import Machine
from ocfs2lab.host.drbd import DrbdResource
from ocfs2lab.host.state import Ledger
from ocfs2lab.spec.storage import DrbdSpec
from tests.support.fake import FakeRunner

PROC_84 = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 0123456789ABCDEF0123456\n"
PROC_84_ATTACHED = PROC_84 + (
    " 0: cs:StandAlone ro:Secondary/Unknown ds:Inconsistent/DUnknown   r-----\n"
    "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1048508\n"
)


def _runner(*, up_fails: bool = True, backing_exists: bool = False) -> FakeRunner:
    proc_reads = iter([PROC_84, PROC_84_ATTACHED, PROC_84_ATTACHED])
    runner: FakeRunner

    def modules(argv: tuple[str, ...], data: bytes | None) -> tuple[int, str]:
        loaded = "modprobe -a drbd" in runner.lines() and "modprobe -r drbd" not in runner.lines()
        return 0, "drbd 499712 0 - Live 0x0000000000000000\n" if loaded else ""

    def status(argv: tuple[str, ...], data: bytes | None) -> tuple[int, str]:
        lines = runner.lines()
        up = "drbdadm up r" in lines and "drbdadm down r" not in lines
        return (0, "r role:Primary\n") if up else (10, "")

    runner = FakeRunner(
        [
            (r"^cat /proc/modules", modules),
            (r"^cat /proc/drbd", lambda a, i: (0, next(proc_reads))),
            (r"^test -e /var/lib/drbd/r_backing.img", (0 if backing_exists else 1, "")),
            (r"^test -e", (1, "")),
            (r"^losetup --find --show", (0, "/dev/loop7\n")),
            (r"^uname -n", (0, "labvm\n")),
            (r"^drbdsetup status", status),
            (r"^drbdadm up", (1 if up_fails else 0, "")),
            (r"^ls -1 ", (2, "")),
        ]
    )
    return runner


def _commands(runner: FakeRunner) -> list[str]:
    keep = ("modprobe", "truncate", "losetup", "drbdadm", "rm -f /var/lib/drbd", "rm -f /etc")
    return [c for c in runner.lines() if c.startswith(keep)]


def test_steps_in_order_and_undone_in_reverse() -> None:
    runner = _runner()
    host = Machine(runner, "fake")
    spec = DrbdSpec(name="r", size="1G")
    with DrbdResource(host, spec, Ledger(host, "lab1")) as drbd:
        assert drbd.device == "/dev/drbd0"
        assert drbd.loop_device == "/dev/loop7"
        built = _commands(runner)
    assert built == [
        "modprobe -a drbd",
        "truncate -s 1073741824 /var/lib/drbd/r_backing.img",
        "losetup --find --show /var/lib/drbd/r_backing.img",
        "drbdadm create-md --force r",
        "drbdadm up r",
        "drbdadm primary --force r",
    ]
    torn = _commands(runner)[len(built) :]
    assert torn == [
        "drbdadm down r",
        "rm -f /var/lib/drbd/drbd-minor-0.lkbd",
        "rm -f /etc/drbd.d/r.res",
        "losetup -d /dev/loop7",
        "rm -f /var/lib/drbd/r_backing.img",
        "modprobe -r drbd",
    ]
    res_file = next(
        i
        for c, i in zip(runner.calls, runner.inputs, strict=True)
        if c[0] == "sh" and "/etc/drbd.d/r.res" in c
    )
    assert res_file is not None
    assert b"lab=lab1" in res_file
    assert b"disk" in res_file and b"/dev/loop7" in res_file


def test_foreign_backing_file_is_refused_before_anything_is_created() -> None:
    runner = _runner(backing_exists=True)
    host = Machine(runner, "fake")
    with (
        pytest.raises(LifecycleError) as info,
        DrbdResource(host, DrbdSpec(name="r", size="1G"), Ledger(host, "lab1")),
    ):
        pass
    assert isinstance(info.value.__cause__, OwnershipError)
    assert not any(c.startswith(("truncate", "losetup", "drbdadm")) for c in runner.lines())


def test_foreign_drbd_resource_refused_unless_forced() -> None:
    def runner_with_foreign() -> FakeRunner:
        return FakeRunner(
            [
                (r"^cat /proc/modules", (0, "drbd 1 0 - Live 0x0\n")),
                (r"^cat /proc/drbd", (0, PROC_84)),
                (r"^drbdsetup status r", (0, "r role:Primary\n")),
                (r"^test -e", (1, "")),
                (r"^ls -1 ", (2, "")),
            ]
        )

    refused = runner_with_foreign()
    host = Machine(refused, "fake")
    with (
        pytest.raises(LifecycleError) as info,
        DrbdResource(host, DrbdSpec(name="r", size="1G"), Ledger(host, "lab1")),
    ):
        pass
    assert isinstance(info.value.__cause__, OwnershipError)
    assert "drbdadm down r" not in refused.lines()

    forced = runner_with_foreign()
    host = Machine(forced, "fake")
    with (
        pytest.raises(LifecycleError),
        DrbdResource(host, DrbdSpec(name="r", size="1G"), Ledger(host, "lab1"), force=True),
    ):
        pass  # the fake keeps reporting it up; what matters is that it was taken down
    assert "drbdadm down r" in forced.lines()
