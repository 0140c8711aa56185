"""Saved machine states, machine by machine: clones of one state are distinct machines, a
damaged state falls back to a cold boot that says why, and ``snapshots=False`` boots cold.

The cluster-level checks (restored nodes mount, files cross, identities, a kill and a
restored revive) run on the shared cluster of ``test_vm_cluster.py``.

These machines have a hostname of their own ("snaptest"), so their slot is theirs: the
tests save it, damage it and remove it without touching the slots other tests use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocfs2lab.runner.ssh import SshRunner
from ocfs2lab.vm.cache import remove_cached
from ocfs2lab.vm.console import SerialConsole
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.inventory import cache_entries
from ocfs2lab.vm.qemu import QemuMachine, QemuSpec, SshKey
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from ocfs2lab.vm.states import DEVICE_STATE, INSTANCE_FILE, RESTORED_MARK, SAVED_JSON
from ocfs2lab.wait import wait_until
from tests.support.clock import clock_error

pytestmark = pytest.mark.lab

HOST = "snaptest"


@pytest.fixture(scope="module")
def image() -> LabImage:
    return build_image(ImageRecipe())


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SshKey:
    return SshKey.generate(tmp_path_factory.mktemp("snapkey"))


@pytest.fixture(scope="module")
def slot(image: LabImage, key: SshKey) -> Iterator[Path]:
    """The test machines' slot, saved by the first start, removed at the end."""
    machine = QemuMachine(spec(image, key), snapshots=True)
    with machine:
        assert machine.restored  # saved, then restored at once
        assert machine.saved_state is not None
        path = machine.saved_state.directory
        assert "saved just now" in machine.start_note
    yield path
    remove_cached(path)


def spec(image: LabImage, key: SshKey) -> QemuSpec:
    return QemuSpec(image=image, hostname=HOST, memory_mib=512, cpus=1, ssh_key=key)


def guest(machine: QemuMachine, script: str) -> str:
    return machine.runner.run(["sh", "-c", script], timeout=60).stdout.strip()


def marked(console: SerialConsole) -> None:
    """The restore is in the kernel's log, so on the console (and a timeline's feed)."""
    wait_until(
        lambda: any(RESTORED_MARK in line.text for line in console.lines()) or None,
        what="the restore's mark on the console",
        timeout=30,
    )


def test_clones_of_one_state_are_distinct_machines(
    image: LabImage, key: SshKey, slot: Path
) -> None:
    a = QemuMachine(spec(image, key), snapshots=True)
    b = QemuMachine(spec(image, key), snapshots=True)
    with a, b:
        assert a.restored and b.restored
        assert a.saved_state is not None and a.saved_state.directory == slot
        # The first thing each clone draws from its RNG: vmgenid made them differ.
        draws = [guest(m, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'") for m in (a, b)]
        assert len(draws[0]) == 64 and draws[0] != draws[1]
        ids = [guest(m, f"cat /proc/sys/kernel/random/boot_id {INSTANCE_FILE}") for m in (a, b)]
        boot_ids = [i.split()[0] for i in ids]
        assert boot_ids[0] == boot_ids[1]  # the saved kernel's, in RAM...
        assert ids[0] != ids[1]  # ...but each restore is its own kernel
        assert [i.split()[1] for i in ids] == [a.instance, b.instance]
        machine_ids = {guest(m, "cat /etc/machine-id") for m in (a, b)}
        assert machine_ids == {a.uuid.replace("-", ""), b.uuid.replace("-", "")}
        for m in (a, b):
            assert guest(m, "hostname") == HOST
            assert abs(clock_error(m.runner)) < 1.0
            assert m.clock_offset is not None and abs(m.clock_offset) < 1.0
            # The lab's key logs in (a new connection); the saved machine's no longer does.
            assert m.ssh_target.identity_file == key.private_key
            with SshRunner(m.ssh_target) as fresh:
                assert fresh.run(["hostname"], timeout=60).stdout.strip() == HOST
            saved_login = m.local.run(
                [
                    "ssh",
                    "-i",
                    str(slot / "id_ed25519"),
                    "-p",
                    str(m.ssh_port),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "IdentitiesOnly=yes",
                    "root@127.0.0.1",
                    "true",
                ],
                check=False,
                timeout=60,
            )
            assert saved_login.exit_code != 0
            marked(m.console)
    # The slot is listed with its image.
    names = [e.name for e in cache_entries() if e.kind == "state"]
    assert f"{image.directory.name}/{slot.name}" in names


def test_a_damaged_state_is_discarded_and_the_machine_boots_cold(
    image: LabImage, key: SshKey, slot: Path
) -> None:
    # Damage the checksum can see: discarded before QEMU starts, saved again by a cold boot.
    data = bytearray((slot / DEVICE_STATE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (slot / DEVICE_STATE).write_bytes(bytes(data))
    machine = QemuMachine(spec(image, key), snapshots=True)
    with machine:
        assert "the old one was discarded: its device.state is damaged (SHA-256 differs)" in (
            machine.start_note
        )
        assert machine.restored  # from the state saved again
        guest(machine, "true")
    # Damage only QEMU can see (the digest matches): QEMU refuses it, the state is
    # discarded, and this machine boots cold.
    (slot / DEVICE_STATE).write_bytes(b"QEVM" + b"\xff" * 4096)
    meta = json.loads((slot / SAVED_JSON).read_text())
    meta["device_state_sha256"] = hashlib.sha256((slot / DEVICE_STATE).read_bytes()).hexdigest()
    (slot / SAVED_JSON).write_text(json.dumps(meta))
    machine = QemuMachine(spec(image, key), snapshots=True)
    with machine:
        assert not machine.restored
        assert machine.start_note.startswith(
            f"saved state {slot.name} discarded: QEMU did not load it"
        )
        assert machine.start_note.endswith("; cold boot")
        assert guest(machine, "hostname") == HOST
    assert not slot.exists()  # discarded; the next start saves it again


def test_snapshots_off_boots_cold(image: LabImage, key: SshKey, slot: Path) -> None:
    machine = QemuMachine(spec(image, key), snapshots=False)
    with machine:
        assert not machine.restored and machine.saved_state is None
        assert machine.start_note == ""
        assert guest(machine, f"test -e {INSTANCE_FILE} || echo none") == "none"
