"""The lifecycle base of every live handle.

A handle acquires what it builds step by step in `Lifecycle._acquire`. Each step that
succeeds registers its undo on an `ExitStack` right away, so a failure half
way undoes exactly what exists. Teardown runs the undos in reverse; each may have a fallback
(``umount`` -> ``umount -l``, stop -> kill); every error met is collected and reported together
without hiding the error that started the teardown.
[`Lifecycle.close`][ocfs2lab.lifecycle.Lifecycle.close] is idempotent.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

from ocfs2lab.errors import LifecycleError, Ocfs2LabError

log = logging.getLogger(__name__)
C = TypeVar("C")


class Lifecycle:
    """Base class for live handles used as context managers.

    Subclasses implement `_acquire`, calling [`step`][ocfs2lab.lifecycle.Lifecycle.step] around each
    piece of work and [`undo`][ocfs2lab.lifecycle.Lifecycle.undo] /
    [`enter`][ocfs2lab.lifecycle.Lifecycle.enter] right after it succeeds.
    """

    def _lifecycle_init(self) -> None:
        if not hasattr(self, "_lc_stack"):
            self._lc_stack: ExitStack | None = None
            self._lc_step: str | None = None
            self._lc_errors: list[BaseException] = []
            self._lc_open = False
            self._lc_timings: dict[str, float] = {}

    # -- what subclasses implement -----------------------------------------------------------
    def _acquire(self) -> None:
        """Build the thing, step by step. Subclasses override."""

    def describe(self) -> str:
        """A short name for messages (``"DrbdResource ocfs2-resource"``)."""
        return type(self).__name__

    # -- tools for _acquire ------------------------------------------------------------------
    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Mark a named step: failures name it, and its wall time is recorded."""
        self._lifecycle_init()
        previous, self._lc_step = self._lc_step, name
        started = time.monotonic()
        log.debug("%s: %s", self.describe(), name)
        try:
            yield
        finally:
            self._lc_timings[name] = self._lc_timings.get(name, 0.0) + time.monotonic() - started
        self._lc_step = previous

    @property
    def timings(self) -> dict[str, float]:
        """Wall seconds spent in each named step so far."""
        self._lifecycle_init()
        return dict(self._lc_timings)

    def undo(
        self,
        action: Callable[[], Any],
        what: str,
        *,
        fallback: Callable[[], Any] | None = None,
    ) -> None:
        """Register the undo of a step that just succeeded.

        Args:
            action: Undoes the step (it carries its own timeout: runner calls always do).
            what: The undo in words, for logs and errors.
            fallback: Tried when ``action`` fails (``umount -l`` after ``umount``, kill after stop).
        """
        stack = self._require_stack()

        def run_undo() -> None:
            try:
                action()
            except Exception as first:
                if fallback is None:
                    log.warning("%s: undo %s failed: %s", self.describe(), what, first)
                    self._lc_errors.append(first)
                    return
                log.warning(
                    "%s: undo %s failed (%s); trying fallback", self.describe(), what, first
                )
                try:
                    fallback()
                except Exception as second:
                    second.__context__ = first
                    self._lc_errors.append(second)

        stack.callback(run_undo)

    def enter(self, child: AbstractContextManager[C]) -> C:
        """Enter a child context manager; it is exited (in reverse order) on teardown."""
        stack = self._require_stack()

        def exit_child(*exc: object) -> bool:
            try:
                child.__exit__(None, None, None)
            except Exception as err:
                self._lc_errors.append(err)
            return False

        value = child.__enter__()
        stack.push(exit_child)
        return value

    def _require_stack(self) -> ExitStack:
        self._lifecycle_init()
        if self._lc_stack is None:
            raise LifecycleError(
                f"{self.describe()}: undo registered outside of __enter__",
                hint="use the object as a context manager (with ...:)",
            )
        return self._lc_stack

    # -- context manager ---------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """True between a successful ``__enter__`` and ``close``."""
        self._lifecycle_init()
        return self._lc_open

    def __enter__(self) -> Self:
        self._lifecycle_init()
        if self._lc_stack is not None:
            raise LifecycleError(f"{self.describe()} is already open", hint="enter it only once")
        self._lc_stack = ExitStack()
        self._lc_errors = []
        try:
            self._acquire()
        except BaseException as err:
            step = self._lc_step or "start"
            self._lc_step = None
            undo_errors = self._unwind()
            if isinstance(err, Exception):
                hint = err.hint if isinstance(err, Ocfs2LabError) else None
                extra = f" (and {len(undo_errors)} error(s) while undoing)" if undo_errors else ""
                raise LifecycleError(
                    f"{self.describe()}: step '{step}' failed: {err}{extra}",
                    step=step,
                    errors=undo_errors,
                    hint=hint,
                ) from err
            raise
        self._lc_open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        errors = self._unwind()
        if errors and exc is None:
            raise LifecycleError(
                f"{self.describe()}: {len(errors)} error(s) during teardown: "
                + "; ".join(str(e) for e in errors),
                step="teardown",
                errors=errors,
                hint="run `ocfs2lab cleanup` to remove what is left",
            ) from errors[0]
        if errors:
            log.error("%s: errors during teardown: %s", self.describe(), errors)

    def start(self, *, close_at_exit: bool = True) -> Self:
        """Build it outside a ``with`` block (a notebook cell); undo it with
        [`close`][ocfs2lab.lifecycle.Lifecycle.close].

        ``with handle:`` is ``handle.start()`` then ``handle.close()`` whatever happens; a
        notebook cannot hold a block open across cells, so it calls the two itself.

        Args:
            close_at_exit: Also close it when the interpreter exits, should no cell get to
                ``close()`` (a failed cell, a restarted kernel).

        Raises:
            LifecycleError: A step failed (what was built is undone), or it is open already.
        """
        self.__enter__()
        if close_at_exit:
            atexit.register(self._close_at_exit)
        return self

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Ocfs2LabError as err:
            log.error("%s: closing at exit: %s", self.describe(), err)

    def close(self) -> None:
        """Undo everything that was built; safe to call more than once.

        Raises:
            LifecycleError: One or more undos failed (all were still attempted).
        """
        atexit.unregister(self._close_at_exit)
        self.__exit__(None, None, None)

    def _unwind(self) -> list[BaseException]:
        self._lifecycle_init()
        stack, self._lc_stack = self._lc_stack, None
        self._lc_open = False
        if stack is None:
            return []
        try:
            stack.close()
        except Exception as err:  # an undo that escaped its own wrapper
            self._lc_errors.append(err)
        errors, self._lc_errors = self._lc_errors, []
        return errors
