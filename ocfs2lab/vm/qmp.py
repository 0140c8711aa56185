"""A synchronous, thread-safe QMP connection to one QEMU process.

``qemu.qmp``'s `QMPClient` is asyncio code. Its own synchronous shim
(``qemu.qmp.legacy``) runs the caller's event loop, which fails inside Jupyter (a loop is
already running there) and is not thread-safe. Here the client lives in a private event
loop on its own thread; callers submit commands with a timeout from any thread. QMP events
(``STOP``, ``RESUME``, ``SHUTDOWN``, ...) are kept with the host time they arrived.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from attrs import frozen
from qemu.qmp import ExecuteError, QMPClient, QMPError

from ocfs2lab.errors import QmpCommandError, TransportError

log = logging.getLogger(__name__)
T = TypeVar("T")


@frozen
class QmpEvent:
    """One QMP event.

    Attributes:
        time: Host wall clock (``time.time()``) when it arrived.
        name: Event name (``"STOP"``, ``"SHUTDOWN"``, ...).
        data: The event's data.
    """

    time: float
    name: str
    data: Mapping[str, Any]


class QmpConnection:
    """One QMP session on a unix socket, usable from any thread.

    Args:
        socket_path: QEMU's QMP socket (``-qmp unix:PATH,server=on,wait=off``).
        name: For messages.
    """

    def __init__(self, socket_path: Path, *, name: str = "qemu") -> None:
        self.socket_path = socket_path
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"qmp-{name}", daemon=True
        )
        self._thread.start()
        self._client: QMPClient | None = None
        self._events: list[QmpEvent] = []
        self._events_lock = threading.Lock()
        self._event_task: asyncio.Task[None] | None = None
        self._closed = False

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        if self._closed:
            coro.close()
            raise TransportError(f"{self.name}: QMP connection is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransportError(
                f"{self.name}: QMP {what} got no answer in {timeout:g} s"
            ) from None

    @property
    def connected(self) -> bool:
        """True while a session is established."""
        return self._client is not None and not self._closed

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and negotiate capabilities.

        Raises:
            TransportError: No QMP session within ``timeout`` (QEMU not up, or exited).
        """

        async def go() -> QMPClient:
            client = QMPClient(self.name)
            await client.connect(str(self.socket_path))
            return client

        try:
            self._client = self._submit(go(), timeout, "connect")
        except (QMPError, OSError) as err:
            raise TransportError(
                f"{self.name}: cannot connect to QMP at {self.socket_path}: {err}"
            ) from err
        self._event_task = self._submit(self._start_pump(), timeout, "event listener")

    async def _start_pump(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._pump_events())

    async def _stop_pump(self) -> None:
        task, self._event_task = self._event_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _pump_events(self) -> None:
        client = self._client
        if client is None:
            return
        async for event in client.events:
            stamp = time.time()
            name = str(event.get("event", "?"))
            raw = event.get("data")
            data: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
            with self._events_lock:
                self._events.append(QmpEvent(stamp, name, data))
            log.debug("%s: QMP event %s %s", self.name, name, data)

    def execute(
        self,
        command: str,
        arguments: Mapping[str, object] | None = None,
        *,
        timeout: float = 10.0,
    ) -> Any:
        """Run a QMP command and return its ``return`` value.

        Raises:
            QmpCommandError: QEMU answered with an error.
            TransportError: Not connected, the connection broke, or no answer in time.
        """
        client = self._client
        if client is None:
            raise TransportError(f"{self.name}: QMP is not connected")
        args = dict(arguments or {})
        log.debug("%s: QMP %s %s", self.name, command, args)
        try:
            return self._submit(client.execute(command, args), timeout, command)
        except ExecuteError as err:
            raise QmpCommandError(command, args, str(err)) from err
        except (QMPError, OSError, EOFError) as err:
            raise TransportError(f"{self.name}: QMP {command} failed: {err}") from err

    def events(self, since: float | None = None) -> list[QmpEvent]:
        """QMP events received so far (those at or after ``since`` if given)."""
        with self._events_lock:
            return [e for e in self._events if since is None or e.time >= since]

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop the loop thread; idempotent."""
        if self._closed:
            return
        client, self._client = self._client, None
        with contextlib.suppress(TransportError):
            self._submit(self._stop_pump(), timeout, "stop event listener")
        if client is not None:
            try:
                self._submit(client.disconnect(), timeout, "disconnect")
            except Exception as err:  # the peer may be gone already; nothing to recover
                log.debug("%s: QMP disconnect: %s", self.name, err)
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
