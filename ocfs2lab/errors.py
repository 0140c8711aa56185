"""The one exception hierarchy of ocfs2lab: every exception class of the library is here.

Every error the library raises on purpose is an [`Ocfs2LabError`][ocfs2lab.errors.Ocfs2LabError].
The modules that raise them import them from here (and keep their earlier names importable).
Subclasses carry the context a caller needs (the command result, the field, the device, the node)
and a ``hint`` that says what to do next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from ocfs2lab.observe.events import TimelineEvent
    from ocfs2lab.observe.timeline import Expect
    from ocfs2lab.observe.verify import VerifyReport
    from ocfs2lab.runner.base import CommandResult


# -- the root, input, commands, waits, lifecycles, hosts ---------------------------------------
class Ocfs2LabError(Exception):
    """Root of every error ocfs2lab raises on purpose.

    Attributes:
        message: What happened.
        hint: What to do next, or ``None`` when there is nothing useful to say.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  what to do: {self.hint}"
        return self.message


class SpecError(Ocfs2LabError, ValueError):
    """A spec was given a value that breaks a rule; raised before anything is touched.

    Attributes:
        field: The dotted name of the offending field (``"cluster.name"``).
        value: The value that was given.
        rule: The rule it breaks, in words.
    """

    def __init__(self, field: str, value: Any, rule: str, *, hint: str | None = None) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={value!r}: {rule}", hint=hint)


class ParseError(Ocfs2LabError, ValueError):
    """Text that should follow a known format does not.

    Attributes:
        what: The format being parsed (``"cluster.conf"``, ``"/proc/drbd"``).
        line: 1-based line number of the problem, or ``None``.
        text: The offending text (shortened).
    """

    def __init__(self, what: str, reason: str, *, line: int | None = None, text: str = "") -> None:
        self.what = what
        self.line = line
        self.text = text[:200]
        where = f" line {line}" if line is not None else ""
        shown = f": {self.text!r}" if self.text else ""
        super().__init__(f"cannot parse {what}{where}: {reason}{shown}")


class CommandError(Ocfs2LabError):
    """A command ran and did not do what was asked.

    Attributes:
        result: The [`CommandResult`][ocfs2lab.runner.base.CommandResult] of the command.
    """

    def __init__(self, message: str, result: CommandResult, *, hint: str | None = None) -> None:
        self.result = result
        super().__init__(message, hint=hint)


class CommandFailed(CommandError):
    """A command exited with a status other than the ones allowed."""

    def __init__(self, result: CommandResult, *, hint: str | None = None) -> None:
        tail = (result.stderr.strip() or result.stdout.strip())[-800:]
        msg = f"{result.where}: `{result.command_line}` exited with {result.exit_code}"
        if tail:
            msg += f": {tail}"
        super().__init__(msg, result, hint=hint)


class CommandTimeout(CommandError):
    """A command did not finish before its timeout and was killed."""

    def __init__(self, result: CommandResult, timeout: float, *, hint: str | None = None) -> None:
        self.timeout = timeout
        msg = (
            f"{result.where}: `{result.command_line}` did not finish within {timeout:g} s "
            "and was killed"
        )
        super().__init__(
            msg,
            result,
            hint=hint
            or "raise the timeout if the machine is slow, or find what the command waits on",
        )


class TransportError(Ocfs2LabError):
    """The way to a machine (ssh connection, docker engine, container) is not usable."""


class WaitTimeout(Ocfs2LabError):
    """A condition did not become true before its deadline.

    Attributes:
        what: The condition waited on, in words.
        timeout: The deadline in seconds.
        last: The last observation, when there was one.
    """

    def __init__(self, what: str, timeout: float, last: object = None, *, hint: str | None = None):
        self.what = what
        self.timeout = timeout
        self.last = last
        msg = f"gave up waiting for {what} after {timeout:g} s"
        if last is not None:
            msg += f" (last seen: {str(last)[:300]})"
        super().__init__(msg, hint=hint)


class LifecycleError(Ocfs2LabError):
    """Building or tearing down a live object failed.

    Attributes:
        step: The step that failed (``"drbd: create-md"``).
        errors: For teardown, every error met while undoing, in the order met.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        errors: Sequence[BaseException] = (),
        hint: str | None = None,
    ) -> None:
        self.step = step
        self.errors = tuple(errors)
        super().__init__(message, hint=hint)


class HostError(Ocfs2LabError):
    """A host lacks something the lab needs, or is in a state the lab must not touch."""


class OwnershipError(HostError):
    """The lab was asked to change or remove something it did not create."""


# -- processes, coverage, the lab's machines and builds ---------------------------------------
class SpawnError(HostError):
    """A long-lived process could not be started or exited at once."""


class CoverageError(Ocfs2LabError):
    """Coverage cannot be collected or reported (no gcov kernel, no data, gcov mismatch)."""


class SavedStateError(Ocfs2LabError):
    """A saved state cannot be used: missing, changed, damaged, or QEMU refused it.

    Attributes:
        slot: The slot's directory.
        reason: Why, in words (``"made by QEMU 7.1.0; this is QEMU 7.2.22"``).
        found: False when there is simply no state yet.
    """

    def __init__(self, slot: Path, reason: str, *, found: bool = True) -> None:
        self.slot = slot
        self.reason = reason
        self.found = found
        super().__init__(
            f"saved state {slot.name}: {reason}",
            hint="it is discarded and the machine boots cold; "
            "set OCFS2LAB_SNAPSHOTS=0 to boot cold always",
        )


class ImageBuildError(Ocfs2LabError):
    """A lab image could not be built.

    Attributes:
        phase: The build phase that failed (``debootstrap``, ``configure``, ...).
    """

    def __init__(self, phase: str, message: str, *, hint: str | None = None) -> None:
        self.phase = phase
        super().__init__(f"image build, {phase}: {message}", hint=hint)


class SourceError(Ocfs2LabError):
    """The kernel source could not be assembled: a patch that does not apply, a tree that
    cannot be read.

    Attributes:
        patch: The patch file at fault, when one is.
    """

    def __init__(self, message: str, *, patch: Path | None = None, hint: str | None = None):
        self.patch = patch
        super().__init__(message, hint=hint)


class QmpCommandError(Ocfs2LabError):
    """QEMU refused or failed a QMP command.

    Attributes:
        command: The QMP command.
        arguments: Its arguments.
    """

    def __init__(self, command: str, arguments: Mapping[str, object], reason: str) -> None:
        self.command = command
        self.arguments = dict(arguments)
        shown = f" {self.arguments}" if self.arguments else ""
        super().__init__(f"QMP {command}{shown} failed: {reason}")


class KernelBuildError(Ocfs2LabError):
    """The lab kernel could not be built.

    Attributes:
        phase: The build phase that failed (``source``, ``configure``, ``compile``, ...).
    """

    def __init__(self, phase: str, message: str, *, hint: str | None = None) -> None:
        self.phase = phase
        super().__init__(f"kernel build, {phase}: {message}", hint=hint)


# -- the timeline ------------------------------------------------------------------------------
def _rel(t: float, origin: float | None) -> str:
    return f"{t - origin:+.3f}s" if origin is not None else f"{t:.6f}"


def _indent(tail: Sequence[TimelineEvent], origin: float | None) -> str:
    if not tail:
        return "  (empty)"
    return "\n".join("  " + e.format(origin) for e in tail)


class TimelineError(Ocfs2LabError):
    """Something on the timeline went against an expectation.

    Attributes:
        tail: The last events of the timeline when it was raised, oldest first.
        origin: The timeline's origin (for relative times in
            [`tail_text`][ocfs2lab.errors.TimelineError.tail_text]).
    """

    def __init__(
        self,
        message: str,
        *,
        tail: Sequence[TimelineEvent] = (),
        origin: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.tail: tuple[TimelineEvent, ...] = tuple(tail)
        self.origin = origin
        super().__init__(message, hint=hint)

    @property
    def tail_text(self) -> str:
        """`tail` one event per line."""
        return "\n".join(e.format(self.origin) for e in self.tail)


class ForbiddenEvent(TimelineError):
    """A forbidden event (by default a kernel error) appeared while waiting on the timeline.

    Attributes:
        event: The forbidden event.
        matched: The expected events seen before it, in order.
    """

    def __init__(
        self,
        event: TimelineEvent,
        matched: Sequence[TimelineEvent],
        *,
        tail: Sequence[TimelineEvent],
        origin: float | None,
    ) -> None:
        self.event = event
        self.matched = tuple(matched)
        what = "kernel error" if event.is_error else "forbidden event"
        message = (
            f"{what} on {event.node or 'the lab'}: {event.kind.value}: "
            f"{(event.kernel.raw if event.kernel else event.text)[:300]}\n"
            f"timeline tail:\n{_indent(tail, origin)}"
        )
        hint = (
            "look at the node's full kernel log (console log); if this error is expected, "
            "pass it in the steps or in forbid=()"
            if event.is_error
            else None
        )
        super().__init__(message, tail=tail, origin=origin, hint=hint)


class ExpectTimeout(WaitTimeout, TimelineError):
    """The expected events did not all appear before the deadline.

    Attributes:
        matched: The expected events that did appear, in order.
        missing: The steps still missing (the first one is the one waited on).
        tail: The last events of the timeline.
    """

    def __init__(
        self,
        what: str,
        timeout: float,
        *,
        matched: Sequence[TimelineEvent],
        missing: Sequence[Expect],
        tail: Sequence[TimelineEvent],
        origin: float | None,
    ) -> None:
        super().__init__(
            what,
            timeout,
            hint="raise the timeout, or read the tail: did the "
            "kernel log something else instead, or nothing at all?",
        )
        self.matched = tuple(matched)
        self.missing = tuple(missing)
        self.tail = tuple(tail)
        self.origin = origin
        seen = ", ".join(
            f"{e.kind.value} on {e.node or '-'} at {_rel(e.time, origin)}" for e in matched
        )
        self.message = (
            f"gave up after {timeout:g} s waiting for {what}: "
            f"{len(matched)} of {len(matched) + len(missing)} steps seen"
            + (f" ({seen})" if seen else "")
            + f"; still missing: {' -> '.join(s.describe() for s in missing)}\n"
            + f"timeline tail:\n{_indent(tail, origin)}"
        )
        self.args = (self.message,)


class KernelErrorsFound(TimelineError):
    """The timeline holds kernel errors that were not allowed.

    Attributes:
        errors: The error events.
    """

    def __init__(
        self, errors: Sequence[TimelineEvent], *, tail: Sequence[TimelineEvent], origin: float
    ) -> None:
        self.errors = tuple(errors)
        lines = "\n".join(
            f"  {e.format(origin)}\n    {(e.kernel.raw if e.kernel else '')[:300]}"
            for e in self.errors[:20]
        )
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(
            f"{len(self.errors)} kernel error(s) on the timeline:\n{lines}{more}",
            tail=tail,
            origin=origin,
            hint="read the node's console log around these lines; allow= what a test expects",
        )


# -- the lost-write check, optional packages -------------------------------------------------
class LostWrites(Ocfs2LabError):
    """Acknowledged writes did not survive.

    Attributes:
        report: The full report.
    """

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        super().__init__(
            f"fsync-acknowledged writes did not survive: {report.summary()}",
            hint="look at the timeline around the lost records' ack times (recovery, "
            "journal replay) and at the survivors' kernel logs",
        )


class MissingDependency(Ocfs2LabError, ImportError):
    """An optional package (pandas, matplotlib) is needed and not installed.

    Attributes:
        package: The missing package.
        extra: The ocfs2lab extra that installs it.
    """

    def __init__(self, package: str, extra: str, what: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{what} needs {package}, which is not installed",
            hint=f"pip install 'ocfs2lab[{extra}]' (or pip install {package})",
        )


__all__ = [
    "CommandError",
    "CommandFailed",
    "CommandTimeout",
    "CoverageError",
    "ExpectTimeout",
    "ForbiddenEvent",
    "HostError",
    "ImageBuildError",
    "KernelBuildError",
    "KernelErrorsFound",
    "LifecycleError",
    "LostWrites",
    "MissingDependency",
    "Ocfs2LabError",
    "OwnershipError",
    "ParseError",
    "QmpCommandError",
    "SavedStateError",
    "SourceError",
    "SpawnError",
    "SpecError",
    "TimelineError",
    "TransportError",
    "WaitTimeout",
]
