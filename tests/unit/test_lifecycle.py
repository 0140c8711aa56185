"""The lifecycle base: undo registered step by step, unwound in reverse, errors collected."""

from __future__ import annotations

import atexit

import pytest

from ocfs2lab.errors import LifecycleError, WaitTimeout
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.runner.base import busy_seconds, watch_commands
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.wait import wait_until


class Built(Lifecycle):
    def __init__(self, log: list[str], fail_at: str | None = None, bad_undo: str | None = None):
        self.log = log
        self.fail_at = fail_at
        self.bad_undo = bad_undo

    def _acquire(self) -> None:
        for name in ("a", "b", "c"):
            with self.step(name):
                if name == self.fail_at:
                    raise RuntimeError(f"{name} broke")
                self.log.append(f"+{name}")
            self.undo(self._undoer(name), f"undo {name}")

    def _undoer(self, name: str):  # type: ignore[no-untyped-def]
        def undo() -> None:
            if name == self.bad_undo:
                raise RuntimeError(f"undo {name} broke")
            self.log.append(f"-{name}")

        return undo


def test_unwinds_in_reverse() -> None:
    log: list[str] = []
    with Built(log) as b:
        assert b.is_open
        assert log == ["+a", "+b", "+c"]
    assert log == ["+a", "+b", "+c", "-c", "-b", "-a"]
    assert not b.is_open


def test_failure_half_way_undoes_only_what_exists_and_names_the_step() -> None:
    log: list[str] = []
    with pytest.raises(LifecycleError) as info, Built(log, fail_at="c"):
        pass
    assert log == ["+a", "+b", "-b", "-a"]
    assert info.value.step == "c"
    assert "step 'c' failed: c broke" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_teardown_errors_are_collected_and_every_undo_still_runs() -> None:
    log: list[str] = []
    with pytest.raises(LifecycleError) as info, Built(log, bad_undo="b"):
        pass
    assert log == ["+a", "+b", "+c", "-c", "-a"]
    assert len(info.value.errors) == 1
    assert "undo b broke" in str(info.value)


def test_teardown_errors_never_hide_the_original_error() -> None:
    log: list[str] = []
    with pytest.raises(KeyError), Built(log, bad_undo="a"):
        raise KeyError("user's error")
    assert log[-2:] == ["-c", "-b"]


def test_close_is_idempotent() -> None:
    log: list[str] = []
    b = Built(log)
    b.__enter__()
    b.close()
    b.close()
    assert log.count("-a") == 1


def test_start_and_close_outside_with_and_the_exit_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks: list[object] = []
    monkeypatch.setattr(atexit, "register", hooks.append)

    def unregister(hook: object) -> None:
        if hook in hooks:
            hooks.remove(hook)

    monkeypatch.setattr(atexit, "unregister", unregister)
    log: list[str] = []
    b = Built(log).start()
    assert b.is_open and log == ["+a", "+b", "+c"] and len(hooks) == 1
    b.close()
    assert log[-3:] == ["-c", "-b", "-a"] and hooks == []
    kept = Built([]).start(close_at_exit=False)
    assert kept.is_open and hooks == []
    kept.close()
    with pytest.raises(LifecycleError, match="step 'b' failed"):
        Built([], fail_at="b").start()
    assert hooks == []


def test_fallback_runs_when_undo_fails() -> None:
    calls: list[str] = []

    class WithFallback(Lifecycle):
        def _acquire(self) -> None:
            def umount() -> None:
                calls.append("umount")
                raise RuntimeError("busy")

            self.undo(umount, "umount", fallback=lambda: calls.append("umount -l"))

    with WithFallback():
        pass
    assert calls == ["umount", "umount -l"]


def test_timings_recorded_per_step() -> None:
    b = Built([])
    with b:
        pass
    assert set(b.timings) == {"a", "b", "c"}


def test_wait_until_returns_first_truthy_value() -> None:
    seen = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(seen), what="x", timeout=5, interval=0.001) == "ready"


def test_wait_until_gives_up_with_last_observation() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: [], what="the thing", timeout=0.05, interval=0.01)
    assert "the thing" in str(info.value)
    assert info.value.last == []


def test_busy_seconds_is_the_union_of_spans() -> None:
    spans = [(0.0, 2.0, ()), (1.0, 3.0, ()), (5.0, 6.0, ())]
    assert busy_seconds(spans) == 4.0
    assert busy_seconds([]) == 0.0


def test_watch_commands_sees_every_result() -> None:
    with watch_commands() as spans:
        LocalRunner().run(["true"])
        LocalRunner().run(["false"], check=False)
    assert [s[2] for s in spans] == [("true",), ("false",)]
    assert all(end >= start for start, end, _ in spans)
