"""The lab's changes on a machine: each recorded in the machine's ledger before it is made,
undone from its entry; foreign o2cb state refused before any command changes a node.

A scripted runner stands in for the machine only to check the ORDER of commands and what
the ledger says; the real restores run in tests/lab/test_ssh_cluster.py.
"""

from __future__ import annotations

import re
from typing import cast

import pytest

from ocfs2lab.clusters.machines import (
    O2CB_STATE_SCRIPT,
    ForeignState,
    SshCluster,
    parse_o2cb_state,
)
from ocfs2lab.errors import LifecycleError, OwnershipError, ParseError
from ocfs2lab.fs.o2cb import CLUSTER_CONF
from ocfs2lab.host.base import Machine
from ocfs2lab.host.changes import MachineChanges, backup_path
from ocfs2lab.host.state import Ledger, parse_ledger
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.runner.ssh import SshRunner
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec
from tests.support.fake import FakeRunner

NET = NetworkSpec(name="ic", subnet="192.168.77.0/24", first_host=10, reserve_gateway=False)
SPEC = ClusterSpec.of_size(2, name="lab", network=NET)
LEDGER_WRITE = r"^sh -c umask 077; mkdir -p"


def _machine(rules: list[tuple[str, tuple[int, str]]]) -> tuple[Machine, FakeRunner]:
    runner = FakeRunner([(r"^test -e /var/lib/ocfs2lab/labs/", (1, "")), *rules])
    return Machine(runner, "m1"), runner


def _index(runner: FakeRunner, pattern: str, start: int = 0) -> int:
    for k, line in enumerate(runner.lines()[start:], start):
        if re.search(pattern, line):
            return k
    raise AssertionError(f"no command matches {pattern!r}: {runner.lines()}")


def _ledger_written(runner: FakeRunner) -> list[tuple[str, str]]:
    """The entries of the last ledger the machine was given."""
    last = max(k for k, line in enumerate(runner.lines()) if line.startswith("sh -c umask 077"))
    data = runner.inputs[last]
    assert data is not None
    return [(e.kind, e.key) for e in parse_ledger(data.decode())]


def test_each_change_is_in_the_ledger_before_it_is_made() -> None:
    machine, runner = _machine(
        [
            (r"^test -d", (1, "")),  # no such directory yet
            (r"^sh -c test -e /etc/ocfs2/cluster.conf", (0, "")),  # a file of the machine's
            (r"^cat /proc/mounts", (0, "proc /proc proc rw 0 0\n")),
            (r"^cat /proc/modules", (0, "")),
        ]
    )
    ch = MachineChanges(machine, Ledger(machine, "lab1"))
    assert ch.make_dir("/etc/ocfs2")
    assert ch.write_file(CLUSTER_CONF, "cluster:\n")
    assert ch.mount("configfs", "configfs", "/sys/kernel/config")
    assert ch.load_modules("ocfs2", ["ocfs2_stack_o2cb"], ["ocfs2_stack_o2cb", "ocfs2"])
    lines = runner.lines()
    # Each ledger write comes before its change.
    mkdir = _index(runner, r"^mkdir -p /etc/ocfs2$")
    assert _index(runner, LEDGER_WRITE) < mkdir
    put = _index(runner, r"^sh -c .* /etc/ocfs2/cluster.conf 644$")
    backup = _index(runner, r"cp -p /etc/ocfs2/cluster.conf")
    assert mkdir < backup < _index(runner, LEDGER_WRITE, backup) < put
    mount = _index(runner, r"^mount -t configfs")
    assert put < _index(runner, LEDGER_WRITE, put) < mount
    modprobe = _index(runner, r"^modprobe -a ocfs2_stack_o2cb$")
    assert mount < _index(runner, LEDGER_WRITE, mount) < modprobe
    assert _ledger_written(runner) == [
        ("dir", "/etc/ocfs2"),
        ("file", CLUSTER_CONF),
        ("mount", "/sys/kernel/config"),
        ("modules", "ocfs2"),
    ]
    assert len(lines) == len(runner.lines())


def test_undo_puts_the_file_back_and_strikes_the_entry() -> None:
    machine, runner = _machine([(r"^sh -c test -e", (0, ""))])
    ledger = Ledger(machine, "lab1")
    ch = MachineChanges(machine, ledger)
    ch.write_file(CLUSTER_CONF, "the lab's\n")
    ch.write_file(CLUSTER_CONF, "the lab's again\n")  # the backup stays the machine's
    assert (
        runner.lines().count(
            f"sh -c test -e {CLUSTER_CONF} || exit 3; mkdir -p "
            f"/var/lib/ocfs2lab/backups/lab1 && cp -p {CLUSTER_CONF} "
            f"{backup_path('lab1', CLUSTER_CONF)}"
        )
        == 1
    )
    start = len(runner.calls)
    ch.undo("file", CLUSTER_CONF)
    after = runner.lines()[start:]
    assert after[0] == f"cp -p {backup_path('lab1', CLUSTER_CONF)} {CLUSTER_CONF}"
    assert after[1] == f"rm -f {backup_path('lab1', CLUSTER_CONF)}"
    # The last entry gone: the ledger and the lab's backups go with it.
    assert after[-2:] == [
        "rm -rf /var/lib/ocfs2lab/labs/lab1.json /var/lib/ocfs2lab/backups/lab1",
        "rmdir --ignore-fail-on-non-empty /var/lib/ocfs2lab/backups /var/lib/ocfs2lab/labs "
        "/var/lib/ocfs2lab",
    ]
    assert ledger.entries() == []
    ch.undo("file", CLUSTER_CONF)  # nothing recorded any more: nothing runs
    assert len(runner.calls) == start + len(after)


def test_a_file_that_did_not_exist_is_removed_on_undo() -> None:
    machine, runner = _machine([(r"^sh -c test -e", (3, ""))])
    ch = MachineChanges(machine, Ledger(machine, "lab1"))
    ch.write_file("/etc/corosync/corosync.conf", "totem {}\n")
    start = len(runner.calls)
    ch.undo("file", "/etc/corosync/corosync.conf")
    assert runner.lines()[start] == "rm -f /etc/corosync/corosync.conf"


def test_what_was_there_before_is_neither_recorded_nor_undone() -> None:
    machine, runner = _machine(
        [
            (r"^test -d", (0, "")),
            (r"^cat /proc/mounts", (0, "configfs /sys/kernel/config configfs rw 0 0\n")),
            (r"^cat /proc/modules", (0, "ocfs2_stack_o2cb 16384 0 - Live 0x0\n")),
        ]
    )
    ch = MachineChanges(machine, Ledger(machine, "lab1"))
    assert not ch.make_dir("/dlm")
    assert not ch.mount("configfs", "configfs", "/sys/kernel/config")
    assert not ch.load_modules("ocfs2", ["ocfs2_stack_o2cb"], ["ocfs2_stack_o2cb"])
    assert not any(
        line.startswith(("sh -c umask", "mkdir", "mount", "modprobe")) for line in runner.lines()
    )


STATE = "othercl\n@@\n/srv/data\n@@\ncluster:\n\tname = othercl\n"


def test_parse_o2cb_state() -> None:
    state = parse_o2cb_state(STATE)
    assert state.clusters == ("othercl",)
    assert state.mounts == ("/srv/data",)
    assert state.conf == "cluster:\n\tname = othercl\n"
    empty = parse_o2cb_state("@@\n@@\n@none\n")
    assert empty.clusters == () and empty.mounts == () and empty.conf is None
    with pytest.raises(ParseError):
        parse_o2cb_state("no separators")


def _node(runner: FakeRunner, k: int = 0) -> SshNode:
    return SshNode(SPEC.nodes[k], runner=cast(SshRunner, runner))


def test_what_force_may_and_may_not_override() -> None:
    node = _node(FakeRunner())
    mine = ForeignState(node, parse_o2cb_state("@@\n@@\n@none\n"), {})
    assert mine.problems("cluster:\n") == ([], [])
    foreign = ForeignState(node, parse_o2cb_state("othercl\n@@\n@@\nold conf\n"), {})
    hard, soft = foreign.problems("cluster:\n")
    assert hard == []
    assert "othercl is registered and no lab owns it" in soft[0]
    assert "restored byte for byte" in soft[1] and CLUSTER_CONF in soft[1]
    same = ForeignState(node, parse_o2cb_state("@@\n@@\ncluster:\n"), {})
    assert same.problems("cluster:\n") == ([], [])  # the same content: nothing to keep
    busy = ForeignState(node, parse_o2cb_state("lab\n@@\n/mnt/x\n@@\n@none\n"), {"lab": "lab9"})
    hard, _ = busy.problems("cluster:\n")
    assert "of lab lab9" in hard[0] and "OCFS2 is mounted on /mnt/x" in hard[1]


def test_foreign_state_is_refused_before_any_command_changes_a_node() -> None:
    runners = []
    nodes = []
    for k in range(2):
        runner = FakeRunner(
            [
                (r"^uname -n", (0, f"ocfs2-node-{k + 1}\n")),
                (r"boot_id", (0, f"kernel-{k}\n")),
                (
                    r"^ip -j -4 addr",
                    (
                        0,
                        '[{"ifname": "ic0", "addr_info": [{"family": "inet", "local": '
                        f'"192.168.77.{11 + k}", "prefixlen": 24}}]}}]',
                    ),
                ),
                (r"^sh -c ls -1 /sys/kernel/config/cluster", (0, "@@\n@@\nmy own conf\n")),
                (r"^ls -1 /var/lib/ocfs2lab/labs", (2, "")),
            ]
        )
        runners.append(runner)
        nodes.append(_node(runner, k))
    cluster = SshCluster(nodes, "/dev/vdb", network=NET, owned=True, name="lab")
    with pytest.raises(LifecycleError) as info:
        cluster.__enter__()
    err = info.value.__cause__
    assert isinstance(err, OwnershipError)
    assert "ocfs2-node-1: /etc/ocfs2/cluster.conf exists and differs" in str(err)
    assert "ocfs2-node-2" in str(err) and "force=True" in str(err)
    changing = ("mkdir", "mount", "modprobe", "o2cb", "sh -c umask", "cp ", "rm ")
    for runner in runners:
        assert not [line for line in runner.lines() if line.startswith(changing)]
        assert any(line.startswith(f"sh -c {O2CB_STATE_SCRIPT[:20]}") for line in runner.lines())
