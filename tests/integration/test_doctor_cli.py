"""The real ``ocfs2lab doctor`` (the venv's console script, run through LocalRunner) against
what this machine really has.

Each expectation is worked out here independently of the doctor: programs are looked up on
PATH and asked for their version, free space comes from statvfs, the image from the cache,
KVM from a real QEMU run of the probe guest under ``-accel kvm``, the kernel from /proc and
/sys. A check that said something else than the machine shows fails the test.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker as docker_sdk
import pytest

from ocfs2lab.doctor import DISK_MISSING_BYTES, DISK_WARN_BYTES, EXTRAS
from ocfs2lab.runner.base import CommandResult
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm import accel
from ocfs2lab.vm.image import find_image
from ocfs2lab.vm.recipe import ImageRecipe, cache_root

pytestmark = pytest.mark.integration

OCFS2LAB = Path(sys.executable).parent / "ocfs2lab"
TIMEOUT = 180.0
GIB = 1024**3
CHECK_NAMES = [
    "qemu-system-x86_64",
    "qemu-img",
    "kvm",
    "debootstrap",
    "mkfs.ext4",
    "vde_switch",
    "ssh",
    "ssh-keygen",
    "disk-space",
    "image-cache",
    "lab-kernel",
    "docker",
    "kernel-ocfs2",
    "kernel-drbd",
    "extra-notebook",
    "extra-coverage",
]
#: The programs and the version option doctor uses (ssh-keygen: presence only).
TOOLS = {
    "qemu-system-x86_64": "--version",
    "qemu-img": "--version",
    "debootstrap": "--version",
    "mkfs.ext4": "-V",
    "vde_switch": "--version",
    "ssh": "-V",
    "ssh-keygen": None,
}
SBIN = "/usr/sbin:/sbin"


def run_doctor(*args: str, env: Mapping[str, str] | None = None) -> CommandResult:
    with LocalRunner() as runner:
        return runner.run([str(OCFS2LAB), "doctor", *args], check=False, timeout=TIMEOUT, env=env)


def as_report(result: CommandResult) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    return data


def by_name(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def clean_env() -> Iterator[None]:
    """No accelerator override: the doctor must decide from the probe."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(accel.ACCEL_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def json_run(clean_env: None) -> CommandResult:
    assert OCFS2LAB.exists(), f"no console script at {OCFS2LAB} (pip install -e .)"
    return run_doctor("--json")


@pytest.fixture(scope="module")
def checks(json_run: CommandResult) -> dict[str, dict[str, Any]]:
    return by_name(as_report(json_run))


# -- what this machine really has ----------------------------------------------------------
def which(program: str) -> str | None:
    return shutil.which(program)


def real_version(program: str, option: str) -> str:
    """The first version-like token the program prints (independent of doctor's patterns)."""
    with LocalRunner() as runner:
        result = runner.run([program, option], check=False, timeout=30)
    match = re.search(r"\d+\.\d+[\w.+~-]*", result.stdout + result.stderr)
    assert match, f"{program} {option} printed no version: {result.stdout}{result.stderr}"
    return match.group(0)


def kvm_really_works() -> bool:
    """Boot the lab's KVM probe guest(s) under -accel kvm here and see whether QEMU exits as
    the guest asks (and, with a cached image, whether its kernel boots to its panic)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or which("qemu-system-x86_64") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp, LocalRunner() as runner:
        image = accel.write_probe_image(Path(tmp) / "probe.img")
        sector = runner.run(accel.probe_argv(image, "kvm"), check=False, timeout=30)
        if sector.timed_out or sector.exit_code != accel.PROBE_EXIT_STATUS:
            return False
        cached = find_image(ImageRecipe())
        if cached is None:
            return True
        boot = runner.run(accel.kernel_probe_argv(cached.kernel, "kvm"), check=False, timeout=30)
        return boot.ok and accel.KERNEL_PROBE_MARK in boot.stdout


def nearest_directory(path: Path) -> Path:
    return next(p for p in (path, *path.parents) if p.is_dir())


def engine_answers() -> bool:
    try:
        client = docker_sdk.from_env(timeout=3)
    except docker_sdk.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker_sdk.errors.DockerException, OSError):
        return False
    finally:
        client.close()


def kernel_has(name: str) -> bool | None:
    """True: the running kernel has it now; False: it cannot (no module directory at all);
    None: it might (a module might load)."""
    filesystems = Path("/proc/filesystems").read_text().split()
    if Path(f"/sys/module/{name}").exists() or name in filesystems:
        return True
    if not Path(f"/lib/modules/{os.uname().release}").exists():
        return False
    return None


# -- the JSON report -----------------------------------------------------------------------
def test_json_report_is_complete_and_exit_code_follows_it(json_run: CommandResult) -> None:
    report = as_report(json_run)
    assert [c["name"] for c in report["checks"]] == CHECK_NAMES
    failing = [c["name"] for c in report["checks"] if c["status"] in ("missing", "error")]
    assert report["ok"] is (not failing)
    assert json_run.exit_code == (0 if report["ok"] else 1), json_run.stderr
    for check in report["checks"]:
        assert check["status"] in ("ok", "warn", "missing", "error")
        assert check["found"] and check["meaning"]
        assert (check["fix"] is None) == (check["status"] == "ok"), check


@pytest.mark.parametrize("program", list(TOOLS))
def test_programs_this_machine_has(program: str, checks: dict[str, dict[str, Any]]) -> None:
    check = checks[program]
    if which(program) is None:
        on_sbin = shutil.which(program, path=SBIN) is not None
        assert check["status"] == ("warn" if on_sbin else "missing"), check
        return
    assert check["status"] == "ok", check
    option = TOOLS[program]
    if option is not None:
        assert real_version(program, option) in check["found"]


def test_kvm_tells_the_truth(checks: dict[str, dict[str, Any]]) -> None:
    check = checks["kvm"]
    if kvm_really_works():
        assert check["status"] == "ok" and check["found"].startswith("KVM: "), check
        return
    assert check["status"] == "warn", check
    assert check["found"].startswith("TCG: "), check
    assert "software emulation" in check["meaning"] and "~5x slower" in check["meaning"]
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        # /dev/kvm opens (as here), so it is the probe guest that failed: it says how.
        assert re.search(
            r"the probe guest \((boot sector|kernel)\) (died|hung|exited)", check["found"]
        )
    else:
        assert "/dev/kvm" in check["found"]


@pytest.mark.parametrize("value", ["kvm", "tcg", "bogus"])
def test_kvm_override(value: str, checks: dict[str, dict[str, Any]]) -> None:
    result = run_doctor("--json", env={accel.ACCEL_ENV: value})
    check = by_name(as_report(result))["kvm"]
    others = {n: c["status"] for n, c in by_name(as_report(result)).items() if n != "kvm"}
    assert others == {n: c["status"] for n, c in checks.items() if n != "kvm"}
    if value == "bogus":
        assert check["status"] == "error" and "'bogus' is neither kvm nor tcg" in check["found"]
        assert result.exit_code == 1
        return
    assert f"forced by {accel.ACCEL_ENV}={value}" in check["found"], check
    if value == "tcg":
        assert check["status"] == "warn"
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert check["status"] == "error"
    else:
        assert check["status"] == ("ok" if kvm_really_works() else "warn"), check


def test_disk_space(checks: dict[str, dict[str, Any]]) -> None:
    cache = cache_root()
    where = nearest_directory(cache)
    stat = os.statvfs(where)
    free = stat.f_bavail * stat.f_frsize
    expected = (
        "ok" if free >= DISK_WARN_BYTES else "warn" if free >= DISK_MISSING_BYTES else "missing"
    )
    check = checks["disk-space"]
    assert check["status"] == expected, check
    match = re.match(r"(\d+\.\d) GiB free for the image cache ", check["found"])
    assert match, check
    assert abs(float(match.group(1)) - free / GIB) < 0.5  # others write to this disk meanwhile
    assert str(cache) in check["found"]


def test_image_cache(checks: dict[str, dict[str, Any]]) -> None:
    image = find_image(ImageRecipe())
    check = checks["image-cache"]
    if image is None:
        assert check["status"] == "warn" and check["fix"] == "ocfs2lab image build (as root)"
        assert ImageRecipe().short_name in check["found"]
    else:
        assert check["status"] == "ok", check
        assert str(image.directory) in check["found"]


def test_docker(checks: dict[str, dict[str, Any]]) -> None:
    check = checks["docker"]
    if engine_answers():
        assert check["status"] == "ok" and "answers" in check["found"], check
    else:
        assert check["status"] == "warn" and "no engine answers" in check["found"], check
    dockerd = which("dockerd") or shutil.which("dockerd", path=SBIN)
    if dockerd is not None:
        assert f"dockerd {real_version(dockerd, '--version')}" in check["found"]
    else:
        assert "no dockerd" in check["found"]


@pytest.mark.parametrize("module", ["ocfs2", "drbd"])
def test_host_kernel(module: str, checks: dict[str, dict[str, Any]]) -> None:
    check = checks[f"kernel-{module}"]
    has = kernel_has(module)
    assert os.uname().release in check["found"]
    if has is True:
        assert check["status"] == "ok", check
    elif has is False:  # this machine: no OCFS2, no DRBD, no module directory
        assert check["status"] == "warn", check
        assert "lab VM (the default) brings its own kernel" in check["meaning"]
    else:
        assert check["status"] in ("ok", "warn")


@pytest.mark.parametrize("extra", list(EXTRAS))
def test_extras(extra: str, checks: dict[str, dict[str, Any]]) -> None:
    installed = []
    for dist in EXTRAS[extra]:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            installed.append(f"{dist} {importlib.metadata.version(dist)}")
    check = checks[f"extra-{extra}"]
    if len(installed) == len(EXTRAS[extra]):
        assert check["status"] == "ok" and check["found"] == ", ".join(installed)
    else:
        assert check["status"] == "warn" and check["fix"] == f"pip install 'ocfs2lab[{extra}]'"


# -- a machine without QEMU, for a user whose PATH has no sbin ----------------------------
@pytest.fixture(scope="module")
def path_without_qemu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A PATH with every program of /usr/local/bin and /usr/bin but qemu-system-x86_64, and
    nothing of /usr/sbin or /sbin (as many non-root users have it)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        if not Path(directory).is_dir():
            continue
        for entry in sorted(Path(directory).iterdir()):
            link = bin_dir / entry.name
            if entry.name != "qemu-system-x86_64" and not link.is_symlink():
                link.symlink_to(entry)
    return {"PATH": str(bin_dir)}


def test_missing_qemu_is_reported_and_fails(
    clean_env: None, path_without_qemu: dict[str, str], checks: dict[str, dict[str, Any]]
) -> None:
    result = run_doctor("--json", env=path_without_qemu)
    report = as_report(result)
    got = by_name(report)
    qemu = got["qemu-system-x86_64"]
    assert qemu["status"] == "missing"
    assert qemu["fix"] == "apt-get install qemu-system-x86"
    assert result.exit_code == 1 and report["ok"] is False
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert "not probed: qemu-system-x86_64 is missing" in got["kvm"]["found"]
    for program in TOOLS:
        if program == "qemu-system-x86_64":
            continue
        if shutil.which(program, path=path_without_qemu["PATH"]) is not None:
            assert got[program]["status"] == checks[program]["status"], program
            continue
        in_sbin = shutil.which(program, path=SBIN)
        if in_sbin is not None:  # debootstrap and mkfs.ext4 on Debian
            assert got[program]["status"] == "warn", got[program]
            assert f"at {in_sbin}, which is not on PATH" in got[program]["found"]
        else:
            assert got[program]["status"] == "missing", got[program]
    others = set(CHECK_NAMES) - set(TOOLS) - {"kvm"}
    assert {n: got[n]["status"] for n in others} == {n: checks[n]["status"] for n in others}


# -- the table -----------------------------------------------------------------------------
def test_table_has_a_row_per_check_and_the_same_exit_code(
    clean_env: None, json_run: CommandResult, checks: dict[str, dict[str, Any]]
) -> None:
    result = run_doctor(env={"COLUMNS": "250"})
    assert result.exit_code == json_run.exit_code
    assert result.stdout == ""  # the table goes to stderr
    for name, check in checks.items():
        assert re.search(rf"│ {re.escape(name)}\s+│ {check['status']}\s+│", result.stderr), name
    assert ("ready" if json_run.exit_code == 0 else "not ready:") in result.stderr


def test_table_reads_at_80_columns(
    clean_env: None, json_run: CommandResult, checks: dict[str, dict[str, Any]]
) -> None:
    """At 80 columns (a default terminal) no check name is broken over two lines, nothing is
    cut short with an ellipsis, and every word of what was found and what it means is there."""
    result = run_doctor(env={"COLUMNS": "80"})
    assert result.exit_code == json_run.exit_code
    lines = result.stderr.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "…" not in result.stderr
    shown = " ".join(" ".join(line.strip("│ ").split("│")) for line in lines).split()
    for name, check in checks.items():
        assert re.search(rf"│ {re.escape(name)}\s+│ {check['status']}\s+│", result.stderr), name
        for word in f"{check['meaning']} {check['fix'] or ''}".split():
            if len(word) < 30:  # longer ones (paths) may be folded over two lines
                assert word in shown, (name, word)


def test_table_exits_1_when_a_piece_is_missing(
    clean_env: None, path_without_qemu: dict[str, str]
) -> None:
    result = run_doctor(env={**path_without_qemu, "COLUMNS": "250"})
    assert result.exit_code == 1
    assert re.search(r"│ qemu-system-x86_64\s+│ missing\s+│", result.stderr)
    assert "not ready: qemu-system-x86_64" in result.stderr
