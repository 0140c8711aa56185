"""Accelerator choice with a fake probe result, and the probe guest itself."""

from __future__ import annotations

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.vm import accel
from ocfs2lab.vm.accel import accel_argv, choose_accel, probe_boot_sector


class Probe:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answer


@pytest.mark.parametrize(("answer", "expected"), [(True, "kvm"), (False, "tcg")])
def test_no_override_follows_probe(answer: bool, expected: str) -> None:
    probe = Probe(answer)
    assert choose_accel(None, probe) == expected
    assert probe.calls == 1
    assert choose_accel("", probe) == expected


@pytest.mark.parametrize(
    ("override", "expected"), [("tcg", "tcg"), ("KVM", "kvm"), (" kvm ", "kvm")]
)
def test_override_wins_without_probing(override: str, expected: str) -> None:
    probe = Probe(expected != "kvm")
    assert choose_accel(override, probe) == expected
    assert probe.calls == 0


def test_bad_override() -> None:
    probe = Probe(True)
    with pytest.raises(SpecError) as err:
        choose_accel("hvf", probe)
    assert (err.value.field, err.value.value) == (accel.ACCEL_ENV, "hvf")
    assert probe.calls == 0


def test_default_accel_reads_env_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def fake_probe(kernel: object = None, runner: object = None, **_: object) -> bool:
        calls.append(kernel)
        return False

    monkeypatch.setattr(accel, "probe_kvm", fake_probe)
    monkeypatch.setattr(accel, "_cached_kvm", None)
    monkeypatch.delenv("OCFS2LAB_ACCEL", raising=False)
    assert accel.default_accel() == "tcg"
    assert accel.default_accel() == "tcg"
    assert len(calls) == 1  # cached per process
    monkeypatch.setenv("OCFS2LAB_ACCEL", "kvm")
    assert accel.default_accel() == "kvm"
    assert len(calls) == 1


def test_no_kvm_device_means_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "kvm_device_usable", lambda path="/dev/kvm": False)

    class Boom:
        def run(self, *a: object, **k: object) -> None:
            raise AssertionError("must not run QEMU")

    assert accel.probe_kvm(runner=Boom()) is False  # type: ignore[arg-type]


def test_accel_argv() -> None:
    assert accel_argv("tcg") == ["-accel", "tcg,thread=multi", "-cpu", "max"]
    assert accel_argv("kvm") == ["-accel", "kvm", "-cpu", "host"]


def test_boot_sector_shape() -> None:
    sector = probe_boot_sector()
    assert len(sector) == 512
    assert sector[-2:] == b"\x55\xaa"
    assert accel.PROBE_EXIT_STATUS == 85
