"""The shared start of lab machines (no machine is booted here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.runner.ssh import SshRunner, SshTarget
from ocfs2lab.vm.boot import BootOptions, StartedMachine, start_machine
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from ocfs2lab.vm.spec import QemuSpec


def spec(**kw: object) -> QemuSpec:
    image = LabImage.in_directory(Path("/img"), ImageRecipe())
    return QemuSpec(image=image, hostname="node1", **kw)  # type: ignore[arg-type]


def test_a_lab_machine_needs_ssh() -> None:
    entered: list[object] = []
    with pytest.raises(SpecError, match="ssh"):
        start_machine(spec(ssh_forward=False), enter=entered.append)  # type: ignore[arg-type]
    assert entered == []


def test_the_options_make_the_machine(tmp_path: Path) -> None:
    listener = print
    options = BootOptions(
        log_dir=str(tmp_path), keep_failed=True, boot_timeout=5.0, console_listeners=[listener]
    )
    machine = options.machine(spec())
    assert machine.log_dir == tmp_path and machine.keep_failed and machine.boot_timeout == 5.0
    assert machine.console_listeners == (listener,) and not machine.snapshots
    runner = SshRunner(SshTarget(host="127.0.0.1", port=2222), tmp_path / "ssh")
    started = StartedMachine(machine, runner)
    assert started.target is runner.target
    assert started.how == "booted in 0.0 s"
    machine.start_note = "restored from saved state x in 2.0 s"
    assert started.how == machine.start_note
    assert started.facts()["instance"] == machine.instance
