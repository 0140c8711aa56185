"""Saved machine states: slots, their checks, the restore's argv and identity script (pure,
on files in a temporary directory; the lab tests restore real machines)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.vm.machine import QemuMachine
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from ocfs2lab.vm.spec import DriveSpec, NicSpec, QemuSpec, SshKey, build_argv
from ocfs2lab.vm.states import (
    CLOCK_MARK,
    DEVICE_STATE,
    ENV_SNAPSHOTS,
    INSTANCE_FILE,
    KEY_FILE,
    KEY_NAME,
    RAM_FILE,
    ROOT_OVERLAY,
    MemoryFile,
    SavedStateError,
    check_saved,
    clock_mark_lines,
    find_clock_mark,
    identity_script,
    shift_clock_lines,
    slot_name,
    snapshots_wanted,
    states_dir,
    write_meta,
)

KEY = SshKey(Path("/k/id"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1Ed9Idgw lab")
QEMU = "QEMU emulator version 7.2.22"


def image(root: Path) -> LabImage:
    return LabImage.in_directory(root, ImageRecipe())


def machine(
    tmp_path: Path, *, hostname: str = "node1", disk: str = "a", mac: str = "52:54:00:77:00:01"
) -> QemuMachine:
    tmp_path.mkdir(parents=True, exist_ok=True)
    disk_path = tmp_path / f"{disk}.raw"
    disk_path.write_bytes(b"\0" * 4096)
    spec = QemuSpec(
        image=image(tmp_path / "img"),
        hostname=hostname,
        memory_mib=1024,
        cpus=1,
        drives=(DriveSpec("shared", disk_path, "ocfs2lab-shared"),),
        nics=(NicSpec("c0", tmp_path / f"switch-{disk}", mac),),
        ssh_key=KEY,
    )
    m = QemuMachine(spec, snapshots=True)
    m.accel = "tcg"
    return m


def test_snapshots_are_on_unless_the_environment_or_the_caller_says_no(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_SNAPSHOTS, raising=False)
    assert snapshots_wanted() is True
    assert snapshots_wanted(False) is False
    for off in ("0", "false", "No", " off "):
        monkeypatch.setenv(ENV_SNAPSHOTS, off)
        assert snapshots_wanted() is False
        assert snapshots_wanted(True) is True  # the caller's word wins
    monkeypatch.setenv(ENV_SNAPSHOTS, "1")
    assert snapshots_wanted() is True


def test_the_argv_of_a_restore_maps_ram_privately_and_waits_for_the_state(tmp_path: Path) -> None:
    spec = QemuSpec(image=image(tmp_path), hostname="node1", memory_mib=1024)
    common = {
        "accel": "tcg",
        "root_disk": Path("/r.qcow2"),
        "qmp_socket": Path("/q"),
        "ssh_port": 2222,
        "ssh_key": KEY,
    }
    plain = build_argv(spec, **common)  # type: ignore[arg-type]
    assert "vmgenid,guid=auto" in plain  # every start: a clone learns it is one
    assert "-incoming" not in plain and not any("memory-backend" in a for a in plain)
    saving = build_argv(spec, memory=MemoryFile(Path("/s/ram"), 1024, shared=True), **common)  # type: ignore[arg-type]
    restoring = build_argv(
        spec,
        memory=MemoryFile(Path("/s/ram"), 1024, shared=False),
        incoming=True,
        **common,  # type: ignore[arg-type]
    )
    assert "memory-backend-file,id=ram0,size=1024M,mem-path=/s/ram,share=on" in saving
    assert "memory-backend-file,id=ram0,size=1024M,mem-path=/s/ram,share=off" in restoring
    machine_opt = restoring[restoring.index("-machine") + 1]
    assert machine_opt.endswith(",memory-backend=ram0")
    assert restoring[-3:] == ["-S", "-incoming", "defer"]


def test_the_guest_view_hides_host_paths_and_keeps_what_the_guest_sees(tmp_path: Path) -> None:
    a = machine(tmp_path / "a")
    (tmp_path / "b").mkdir()
    b = machine(tmp_path / "b", disk="other")  # other paths, same guest
    view = a.guest_view()
    assert view == b.guest_view()
    assert not any(str(tmp_path) in word for word in view)
    assert "shared:4096" in view  # the disk's size is guest-visible
    assert a.guest_view() != machine(tmp_path / "a", hostname="node2").guest_view()
    assert a.guest_view() != machine(tmp_path / "a", mac="52:54:00:77:00:02").guest_view()
    inputs = a.state_inputs()
    assert set(inputs) == {"root disk", "kernel", "initrd"}
    name = slot_name("node1", view, inputs)
    assert name.startswith("node1-") and len(name) == len("node1-") + 16
    assert name == slot_name("node1", b.guest_view(), inputs)
    assert name != slot_name("node1", view, {**inputs, "kernel": Path("/other/bzImage")})
    assert states_dir(a.spec.image.root_disk) == tmp_path / "a" / "img" / "states"


def saved_slot(tmp_path: Path) -> tuple[Path, list[str], dict[str, Path]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    inputs = {"root disk": tmp_path / "root.img", "kernel": tmp_path / "bzImage"}
    for path in inputs.values():
        path.write_bytes(b"image")
    slot = tmp_path / "states" / "node1-0123456789abcdef"
    slot.mkdir(parents=True)
    with (slot / RAM_FILE).open("wb") as f:
        f.truncate(1 << 20)
    for name in (DEVICE_STATE, ROOT_OVERLAY, KEY_NAME):
        (slot / name).write_bytes(name.encode() * 100)
    view = ["qemu", "-m", "1024"]
    write_meta(
        slot,
        hostname="node1",
        guest_view=view,
        inputs=inputs,
        qemu=QEMU,
        memory_mib=1024,
        uuid="8d0b4a55-4a55-4a55-8a55-0123456789ab",
        public_key=KEY.public_key,
        boot_seconds=20.0,
        save_seconds=0.1,
        guest_clock_at_stop_ns=1_764_000_000_000_000_000,
    )
    return slot, view, inputs


def reason(slot: Path, view: list[str], inputs: dict[str, Path], qemu: str = QEMU) -> str:
    with pytest.raises(SavedStateError) as err:
        check_saved(slot, guest_view=view, inputs=inputs, qemu=qemu)
    assert err.value.found
    return err.value.reason


def test_a_valid_slot_passes_and_each_change_discards_it_with_its_reason(tmp_path: Path) -> None:
    slot, view, inputs = saved_slot(tmp_path)
    state = check_saved(slot, guest_view=view, inputs=inputs, qemu=QEMU)
    assert state.name == slot.name and state.public_key == KEY.public_key
    assert state.uuid.startswith("8d0b4a55")
    assert state.guest_clock_at_stop_ns == 1_764_000_000_000_000_000

    assert "made by 'QEMU emulator version 7.2.22'; this is 'QEMU 8.2'" in reason(
        slot, view, inputs, "QEMU 8.2"
    )
    assert (
        reason(slot, [*view, "-smp", "2"], inputs) == "the machine's guest-visible options differ"
    )
    assert reason(slot, view, {**inputs, "kernel": tmp_path / "root.img"}).startswith(
        "it was made for other image or kernel files"
    )

    st = inputs["kernel"].stat()
    os.utime(inputs["kernel"], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert reason(slot, view, inputs) == "the kernel changed since the state was saved"
    os.utime(inputs["kernel"], ns=(st.st_atime_ns, st.st_mtime_ns))
    check_saved(slot, guest_view=view, inputs=inputs, qemu=QEMU)

    data = bytearray((slot / DEVICE_STATE).read_bytes())
    data[10] ^= 0xFF
    ds = (slot / DEVICE_STATE).stat()
    (slot / DEVICE_STATE).write_bytes(bytes(data))
    os.utime(slot / DEVICE_STATE, ns=(ds.st_atime_ns, ds.st_mtime_ns))
    assert reason(slot, view, inputs) == "its device.state is damaged (SHA-256 differs)"


def test_a_changed_or_missing_file_of_the_slot_discards_it(tmp_path: Path) -> None:
    slot, view, inputs = saved_slot(tmp_path)
    with (slot / RAM_FILE).open("r+b") as f:
        f.write(b"x")
    assert reason(slot, view, inputs) == "its ram changed since it was saved"
    slot, view, inputs = saved_slot(tmp_path / "second")
    (slot / ROOT_OVERLAY).unlink()
    assert reason(slot, view, inputs) == "its root.qcow2 is missing"
    meta = json.loads((slot / "saved.json").read_text())
    meta["format"] = 0
    (slot / "saved.json").write_text(json.dumps(meta))
    assert reason(slot, view, inputs).startswith("layout version 0")
    (slot / "saved.json").write_text("{")
    assert reason(slot, view, inputs) == "saved.json is missing or unreadable"


def test_no_slot_is_not_a_discard(tmp_path: Path) -> None:
    with pytest.raises(SavedStateError) as err:
        check_saved(tmp_path / "none", guest_view=[], inputs={}, qemu=QEMU)
    assert not err.value.found


def test_the_identity_script_is_valid_shell_and_sets_every_part(tmp_path: Path) -> None:
    script = identity_script(
        hostname="node1",
        machine_id="0123456789abcdef0123456789abcdef",
        instance="feedc0de",
        public_key=KEY.public_key,
        clock_shift_ns=86_400_000_000_000,
        clock=0.0,
        flush_devices=["/dev/disk/by-id/virtio-ocfs2lab-shared"],
        slot="node1-0123456789abcdef",
    )
    check = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True, check=False)
    assert check.returncode == 0, check.stderr
    assert 'date -s "+86400.000000000 seconds"' in script  # relative: exact
    assert "date -s @" not in script
    assert f"'{KEY.public_key}' > {KEY_FILE}.tmp" in script
    assert f"> {INSTANCE_FILE}" in script and "feedc0de" in script
    assert "0123456789abcdef0123456789abcdef > /etc/machine-id" in script
    assert "hostname node1" in script
    assert "blockdev --flushbufs /dev/disk/by-id/virtio-ocfs2lab-shared" in script
    assert "ocfs2lab: restored from saved state node1-0123456789abcdef" in script
    assert script.rstrip().endswith(f'date +"{CLOCK_MARK} feedc0de %s%N" > /dev/kmsg')
    # Without the saved clock, the host's time as the script leaves (to be corrected).
    fallback = identity_script(
        hostname="n",
        machine_id="m",
        instance="i",
        public_key=KEY.public_key,
        clock_shift_ns=None,
        clock=1_764_000_000.25,
    )
    assert "date -s @1764000000.250000 >/dev/null" in fallback
    with pytest.raises(SpecError, match="must be one non-empty line") as info:
        identity_script(
            hostname="n",
            machine_id="m",
            instance="i",
            public_key="a\nb",
            clock_shift_ns=0,
            clock=0.0,
        )
    assert info.value.field == "public_key"


def test_a_clock_shift_is_relative_and_its_mark_parses() -> None:
    assert shift_clock_lines(1_500_000_000) == ['date -s "+1.500000000 seconds" >/dev/null']
    assert shift_clock_lines(-86_400_000_000_001) == [
        'date -s "-86400.000000001 seconds" >/dev/null'
    ]
    # GNU date reads such a shift relative to its own clock (shown here with -d: no set).
    before = time.time()
    shifted = subprocess.run(
        ["date", "-d", "+1.500000000 seconds", "+%s.%N"], capture_output=True, text=True, check=True
    ).stdout
    assert 1.5 <= float(shifted) - before < 2.5
    line = "[   12.345678] ocfs2lab-clock feedc0de 1764000000123456789"
    assert find_clock_mark(line, "feedc0de") == 1764000000123456789
    assert find_clock_mark(line, "other") is None
    assert clock_mark_lines("t") == ['date +"ocfs2lab-clock t %s%N" > /dev/kmsg']
