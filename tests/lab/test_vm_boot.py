"""The lab image and the QEMU launcher, for real: build (or reuse) the image, boot it.

The image is built once per test run (session fixture); the first run on a machine takes a
few minutes, later runs reuse the cached image. A bookworm image is built and booted too
(the recipe's release parameter).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocfs2lab.coverage import KERNEL_GCOV, CoverageError
from ocfs2lab.coverage.collect import check_kernel
from ocfs2lab.errors import LifecycleError
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm import (
    NODE_IMAGE,
    ImageRecipe,
    LabImage,
    QemuMachine,
    QemuSpec,
    SshKey,
    build_image,
    parse_console_log,
)
from ocfs2lab.vm.accel import (
    KERNEL_PROBE_MARK,
    PROBE_EXIT_STATUS,
    kernel_probe_argv,
    probe_argv,
    write_probe_image,
)
from ocfs2lab.vm.kernel import find_kernel
from ocfs2lab.vm.recipe import GCOV_PREFIX

pytestmark = pytest.mark.lab

#: A kernel log line on the console: "<host time> [<kernel time>] text".
KERNEL_LINE = re.compile(r"^\d+\.\d{6} \[\s*\d+\.\d+\] ")


@pytest.fixture(scope="session")
def lab_image() -> LabImage:
    """The default lab image, built once (minutes) or taken from the cache."""
    return build_image(ImageRecipe())


@pytest.fixture(scope="session")
def lab_key(tmp_path_factory: pytest.TempPathFactory) -> SshKey:
    """One throwaway key for every machine of the session (as a lab would do)."""
    return SshKey.generate(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="module")
def vm(
    lab_image: LabImage, lab_key: SshKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QemuMachine]:
    """One booted lab VM shared by the read-only checks of this module."""
    logs = tmp_path_factory.mktemp("vm-logs")
    with QemuMachine(
        QemuSpec(image=lab_image, hostname="labtest", ssh_key=lab_key), log_dir=logs
    ) as machine:
        yield machine


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a reaped or zombie child both count as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in {"Z", "X"}


def test_kvm_probe_sector_runs_under_tcg(tmp_path: Path) -> None:
    """The probe guest does what the KVM probe expects of it (checked under TCG)."""
    image = write_probe_image(tmp_path / "probe.img")
    result = LocalRunner().run(probe_argv(image, "tcg"), check=False, timeout=30)
    assert result.exit_code == PROBE_EXIT_STATUS, result.stderr


def test_kvm_kernel_probe_runs_under_tcg(lab_image: LabImage) -> None:
    """The kernel probe panics on the missing root and QEMU exits (checked under TCG)."""
    argv = kernel_probe_argv(lab_image.kernel, "tcg")
    result = LocalRunner().run(argv, check=False, timeout=120)
    assert result.ok, result.stderr
    assert KERNEL_PROBE_MARK in result.stdout


def test_second_build_reuses_the_cache(lab_image: LabImage) -> None:
    started = time.monotonic()
    again = build_image(ImageRecipe())
    assert time.monotonic() - started < 5
    assert again == lab_image
    assert again.root_disk == lab_image.root_disk
    assert lab_image.exists()
    assert not list(lab_image.directory.parent.glob(f".build-{lab_image.recipe.short_name}-*"))


def test_kernel_modules_and_drbd(vm: QemuMachine) -> None:
    run = vm.runner.run
    run(["modprobe", "ocfs2_stack_o2cb"])
    run(["modprobe", "drbd"])
    assert "ocfs2_stack_o2cb" in run(["lsmod"]).stdout
    proc_drbd = run(["cat", "/proc/drbd"]).stdout
    assert re.search(r"version: \d+\.\d+\.\d+", proc_drbd), proc_drbd


def test_the_lab_kernel_has_gcov_and_the_probe(vm: QemuMachine, lab_image: LabImage) -> None:
    """The default image boots the lab's own kernel: gcov counters appear as OCFS2 loads,
    at the build tree's path; the probe and GCOV_PREFIX are there for the tools."""
    assert lab_image.recipe.kernel is not None
    kernel = find_kernel(lab_image.recipe.kernel)
    assert kernel is not None
    run = vm.runner.run
    assert run(["uname", "-r"]).stdout.strip() == kernel.release
    check_kernel(vm.runner, "lab VM")
    run(["modprobe", "ocfs2"])
    listed = run(["find", KERNEL_GCOV, "-name", "*.gcda"]).stdout.split()
    assert f"{KERNEL_GCOV}{kernel.build_root}/fs/ocfs2/super.gcda" in listed
    assert not [p for p in listed if "/fs/ocfs2/" not in p and "/drivers/block/drbd/" not in p]
    assert run(["sh", "-c", "echo $GCOV_PREFIX"]).stdout.strip() == GCOV_PREFIX
    assert run(["o2probe", "statfs", "/"], check=False).exit_code == 1  # ext4, not ocfs2
    found = run(["find", GCOV_PREFIX, "-name", "o2probe.gcda"]).stdout
    assert found.strip().endswith("/tools-gcov/o2probe.gcda")
    run(["rm", "-rf", GCOV_PREFIX])


def test_console_has_timestamped_kernel_lines(vm: QemuMachine) -> None:
    before = time.time()
    vm.runner.run(["modprobe", "-r", "drbd"], check=False)
    vm.runner.run(["modprobe", "drbd"])
    line = vm.console.wait_for(r"drbd: initialized\. Version", timeout=60, since=before)
    assert before <= line.time <= time.time()
    logged = parse_console_log(vm.console_log.read_text())
    kernel_lines = [f"{entry.format()}" for entry in logged if KERNEL_LINE.match(entry.format())]
    assert len(kernel_lines) > 50  # the boot's kernel messages, each stamped on arrival
    assert any("drbd: initialized" in text for text in kernel_lines)
    assert not [entry for entry in logged if "dev fd0" in entry.text]


def test_docker_node_image(vm: QemuMachine) -> None:
    run = vm.runner.run
    run(["docker", "image", "inspect", NODE_IMAGE], timeout=300)
    run(["docker", "run", "--rm", "--privileged", NODE_IMAGE, "true"], timeout=300)
    tools = run(
        [
            "docker",
            "run",
            "--rm",
            NODE_IMAGE,
            "sh",
            "-c",
            "command -v mkfs.ocfs2 && command -v o2cb && command -v run_tests.sh",
        ],
        timeout=300,
    )
    assert "mkfs.ocfs2" in tools.stdout and "run_tests.sh" in tools.stdout


def test_guest_configuration(vm: QemuMachine) -> None:
    run = vm.runner.run
    assert run(["hostname"]).stdout.strip() == "labtest"
    assert run(["findmnt", "-no", "SOURCE,FSTYPE", "/"]).stdout.split() == ["/dev/vda", "ext4"]
    assert (
        run(["blkid", "-s", "LABEL", "-o", "value", "/dev/vda"]).stdout.strip() == "ocfs2lab-root"
    )
    run(["mountpoint", "-q", "/sys/kernel/debug"])
    run(["mountpoint", "-q", "/sys/kernel/config"])
    assert len(run(["cat", "/etc/machine-id"]).stdout.strip()) == 32
    # The key came on the kernel command line; nothing was written to the image.
    assert "ocfs2lab.ssh_key=" in run(["cat", "/proc/cmdline"]).stdout
    assert run(["test", "-e", "/root/.ssh/authorized_keys"], check=False).exit_code == 1
    state = run(["systemctl", "is-system-running"], check=False).stdout.strip()
    assert state in {"running", "starting"}, run(["systemctl", "--failed", "--no-legend"]).stdout


def test_qmp_helpers(vm: QemuMachine) -> None:
    since = time.time()
    vm.stop()
    assert vm.query_status() == "paused"
    vm.cont()
    assert vm.query_status() == "running"
    names = [event.name for event in vm.events(since)]
    assert "STOP" in names and "RESUME" in names
    vm.set_link("ssh0", False)
    vm.set_link("ssh0", True)
    vm.block_set_io_throttle("root", iops=1000)
    vm.block_set_io_throttle("root")
    vm.runner.run(["true"])


def _machine_leftovers(machine: QemuMachine) -> list[Path]:
    paths = [machine.work_dir, machine.socket_dir, machine.overlay]
    return [p for p in paths if p is not None and p.exists()]


def test_teardown_removes_everything(lab_image: LabImage, lab_key: SshKey) -> None:
    machine = QemuMachine(QemuSpec(image=lab_image, hostname="teardown", ssh_key=lab_key))
    with machine:
        pid = machine.pid
        assert pid is not None and not gone(pid)
        assert machine.overlay is not None and machine.overlay.exists()
        assert machine.boot_seconds is not None
    assert gone(pid)
    assert _machine_leftovers(machine) == []
    assert lab_key.private_key.exists()  # a key the caller passed is the caller's
    machine.close()  # idempotent
    with machine:  # and it boots again (a fresh overlay: a restarted node)
        assert machine.pid != pid
        machine.runner.run(["true"])
    assert machine.pid is not None and gone(machine.pid)
    assert _machine_leftovers(machine) == []


def test_teardown_when_the_block_raises(lab_image: LabImage) -> None:
    machine = QemuMachine(QemuSpec(image=lab_image, hostname="raises"), keep_failed=True)
    with pytest.raises(RuntimeError, match="boom"), machine:
        pid = machine.pid
        key = machine.ssh_key
        raise RuntimeError("boom")
    assert pid is not None and gone(pid)
    assert key is not None and not key.private_key.exists()  # its own throwaway key
    assert machine.work_dir is not None
    kept = sorted(p.name for p in machine.work_dir.iterdir())
    assert kept == ["console.log", "qemu.log"]  # keep_failed: the logs only
    assert machine.overlay is not None and not machine.overlay.exists()
    assert machine.socket_dir is not None and not machine.socket_dir.exists()
    for path in machine.work_dir.iterdir():
        path.unlink()
    machine.work_dir.rmdir()


def test_boot_failure_is_fast_and_shows_the_console(lab_image: LabImage) -> None:
    """A kernel that cannot find its root disk panics; QEMU exits; the error says so."""
    spec = QemuSpec(
        image=lab_image, hostname="nokey", cmdline_extra=("root=LABEL=missing", "rootdelay=1")
    )
    machine = QemuMachine(spec, boot_timeout=600)
    started = time.monotonic()
    with pytest.raises(LifecycleError) as info, machine:
        pass
    assert time.monotonic() - started < 200
    assert "QEMU exited" in str(info.value)
    assert machine.pid is not None and gone(machine.pid)
    assert _machine_leftovers(machine) == []


def test_bookworm_image_with_debians_kernel_boots(lab_key: SshKey) -> None:
    """The other release, and Debian's packaged kernel instead of the lab's own; restored
    from a saved state like the lab's kernel (saved by the first start)."""
    image = build_image(ImageRecipe(release="bookworm", kernel=None))
    with (
        tempfile.TemporaryDirectory() as logs,
        QemuMachine(
            QemuSpec(image=image, hostname="bookworm", ssh_key=lab_key),
            log_dir=logs,
            snapshots=True,
        ) as machine,
    ):
        run = machine.runner.run
        assert machine.restored, machine.start_note
        assert run(["hostname"]).stdout.strip() == "bookworm"
        # Debian's kernel reseeds its RNG on a new VM generation ID too.
        assert "CONFIG_VMGENID=y" in run(["sh", "-c", "cat /boot/config-$(uname -r)"]).stdout
        assert "bookworm" in run(["cat", "/etc/os-release"]).stdout
        assert run(["uname", "-r"]).stdout.strip().endswith("-amd64")  # Debian's kernel
        with pytest.raises(CoverageError, match="has no gcov"):
            check_kernel(machine.runner, "bookworm")
        run(["modprobe", "ocfs2_stack_o2cb"])
        run(["modprobe", "drbd"])
        assert "version:" in run(["cat", "/proc/drbd"]).stdout
        run(["docker", "run", "--rm", "--privileged", NODE_IMAGE, "true"], timeout=300)
