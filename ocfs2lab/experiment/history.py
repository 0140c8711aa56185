"""History workloads: every node busy with small file operations, each recorded for a checker.

``with HistoryWorkload(cluster.nodes, HistorySpec("register")) as work:`` copies the
operations agent (``assets/opsagent.py``) to each node, starts it there, and runs one
thread per node on the host that sends it operations one at a time: writes and reads of
small files (registers), appends to shared logs, or increments of a counter under
``flock`` or ``fcntl``. Each operation is stamped on the host's clock when sent and when
its answer arrives ([`Op`][ocfs2lab.consistency.history.Op]), so the real operation lies
inside its interval.

A node that dies leaves its operation ``unknown`` and its thread ends (a Jepsen process
that crashed). After the faults,
[`final_reads`][ocfs2lab.experiment.history.HistoryWorkload.final_reads] reads every key from
a survivor, and [`check`][ocfs2lab.experiment.history.HistoryWorkload.check] runs the
workload's checker over the
[`history`][ocfs2lab.experiment.history.HistoryWorkload.history].
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocfs2lab.consistency import (
    CheckResult,
    History,
    Op,
    Outcome,
    check_appends,
    check_mutex,
    check_registers,
)
from ocfs2lab.errors import HostError, Ocfs2LabError, SpecError
from ocfs2lab.experiment.recovery import WriterNode
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.observe.events import LabEventKind
from ocfs2lab.observe.recorder import Listener
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.spec.history import HistorySpec
from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)

__all__ = ["AGENT_PATH", "HistoryWorkload", "agent_script"]

#: Where the agent is copied on each node.
AGENT_PATH = "/usr/local/sbin/ocfs2lab-opsagent"


def agent_script() -> Path:
    """Path of the operations agent (``assets/opsagent.py``) to copy to nodes."""
    return Path(__file__).resolve().parent / "assets" / "opsagent.py"


class _Server:
    """The host end: agents connect to 127.0.0.1:port and say hello with their node name."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._port: int = self._sock.getsockname()[1]
        self._lock = threading.Condition()
        self._arrived: dict[str, tuple[socket.socket, socket.SocketIO]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="opsagent-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._port

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.settimeout(30)
            stream = conn.makefile("rwb", buffering=0)
            try:
                hello = json.loads(stream.readline())
                node = str(hello["node"])
            except (OSError, ValueError, KeyError, TypeError):
                conn.close()
                continue
            conn.settimeout(None)
            with self._lock:
                self._arrived[node] = (conn, stream)
                self._lock.notify_all()

    def wait_for(self, node: str, deadline: Deadline) -> tuple[socket.socket, socket.SocketIO]:
        with self._lock:
            while node not in self._arrived:
                left = deadline.remaining
                if left <= 0:
                    raise HostError(
                        f"{node}: the operations agent did not connect to the lab",
                        hint=f"see its log on the node ({_agent_log(node)})",
                    )
                self._lock.wait(min(left, 1.0))
            return self._arrived.pop(node)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            for conn, _ in self._arrived.values():
                conn.close()
            self._arrived.clear()


#: The keys' names by what the files hold: reg0, reg1... (registers), log0... , counter0...
_PREFIX = {"register": "reg", "log": "log", "counter": "counter"}
# $1: the directory; the rest: files made empty (created if missing).
_FRESH_FILES = 'mkdir -p "$1" && shift && for f in "$@"; do : > "$f" || exit 1; done'


def _agent_log(node: str, workload: str = "*") -> str:
    return f"/var/tmp/ocfs2lab-opsagent-{workload}-{node}.log"


class _Client:
    """One node's connection and the operations it ran."""

    def __init__(
        self, node: WriterNode, conn: socket.socket, stream: socket.SocketIO, incarnation: int = 0
    ) -> None:
        self.node = node
        self.name: str = node.spec.name
        self.conn = conn
        self.stream = stream
        self.incarnation = incarnation
        self.process = f"{self.name}/{incarnation}"
        self.dead = False
        self.request_id = itertools.count()


class HistoryWorkload(Lifecycle):
    """A history workload on a cluster's nodes (VM or SSH nodes: they reach the host).

    Args:
        nodes: The nodes that run operations (each needs ``recorder_address``).
        spec: What to run.
        mount_point: The volume's mount point on the nodes.
        timeline: Where the start and the end are noted (optional).

    Attributes:
        spec: The workload.
    """

    def __init__(
        self,
        nodes: Sequence[WriterNode],
        spec: HistorySpec,
        *,
        mount_point: str = "/mnt/ocfs2",
        timeline: Timeline | None = None,
    ) -> None:
        if not nodes:
            raise SpecError("nodes", [], "a history workload needs at least one node")
        for node in nodes:
            if not hasattr(node, "recorder_address"):
                raise SpecError(
                    "nodes",
                    node.spec.name,
                    "must reach the host (VM or SSH nodes; container nodes share one kernel "
                    "and check nothing across nodes)",
                )
        self.nodes = list(nodes)
        self.spec = spec
        self.directory = f"{mount_point}/{spec.directory}"
        self.timeline = timeline
        self._server: _Server | None = None
        self._clients: dict[str, _Client] = {}
        self._every_client: list[_Client] = []
        self._agents: list[RemoteProcess] = []
        self._ops: list[Op] = []
        self._ops_lock = threading.Lock()
        self._index = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._value = itertools.count(1)

    def describe(self) -> str:
        """Name for messages."""
        return f"{self.spec.workload} history workload"

    # -- life ---------------------------------------------------------------------------
    def _acquire(self) -> None:
        with self.step("server"):
            server = _Server()
            self._server = server
            self.undo(server.close, "close the operations server")
        with self.step("agents"):
            # Every file exists, empty, before the first operation: a register starts
            # unwritten (an earlier run's value would be one no write of this history
            # made), and two nodes creating one name at once can see EEXIST from
            # open(O_CREAT) (found in the lab), which is not what the workloads check.
            paths = [f"{self.directory}/{key}" for key in self.keys()]
            self.nodes[0].run(
                ["sh", "-c", _FRESH_FILES, "sh", self.directory, *paths],
                timeout=120,
            )
            script = agent_script().read_bytes()
            outcome = run_parallel(self.nodes, lambda n: self._start_agent(n, script, server))
            for _node, agent in outcome.done:
                self._agents.append(agent)
            self.undo(self._stop_agents, "stop the operations agents")
            outcome.raise_failures("start the operations agent", lambda n: n.spec.name)
            deadline = Deadline(120.0)
            clients = [self._connect(node, server, deadline) for node in self.nodes]
            self.undo(self._close_clients, "close the agents' connections")
        with self.step("workers"):
            for client in clients:
                self._start_worker(client)
            self.undo(self.stop, "stop the workers")
            self._note(f"{self.describe()} started on {len(self.nodes)} nodes")

    def reconnect(self, node: WriterNode) -> None:
        """Start a new operations process on ``node`` (after its revive): a new agent, a
        new connection, a new process name (``<node>/<n+1>``), and a thread that sends it
        operations until the workload stops.

        Raises:
            SpecError: Not one of the workload's nodes, or its process is still alive.
            HostError: The new agent did not connect.
        """
        old = self._clients.get(node.spec.name)
        if old is None:
            raise SpecError("node", node.spec.name, "is not one of the workload's nodes")
        if not old.dead:
            raise SpecError("node", node.spec.name, "still has a live operations process")
        server = self._server
        assert server is not None
        self._agents.append(self._start_agent(node, agent_script().read_bytes(), server))
        client = self._connect(node, server, Deadline(120.0), old.incarnation + 1)
        if not self._stop.is_set():
            self._start_worker(client)

    def _connect(
        self, node: WriterNode, server: _Server, deadline: Deadline, incarnation: int = 0
    ) -> _Client:
        """Wait for ``node``'s agent to connect; its client becomes the node's current one."""
        conn, stream = server.wait_for(node.spec.name, deadline)
        client = _Client(node, conn, stream, incarnation)
        self._clients[node.spec.name] = client
        self._every_client.append(client)
        return client

    def _start_worker(self, client: _Client) -> None:
        thread = threading.Thread(
            target=self._work, args=(client,), name=f"ops-{client.name}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _start_agent(self, node: WriterNode, script: bytes, server: Listener) -> RemoteProcess:
        node.put_file(AGENT_PATH, script, 0o755)
        argv = [
            "python3",
            AGENT_PATH,
            "--server",
            node.recorder_address(server),
            "--node",
            node.spec.name,
            "--dir",
            self.directory,
            "--lock",
            self.spec.lock or "flock",
            "--hold",
            str(self.spec.hold_s),
            "--append-lock",
            self.spec.append_lock,
        ]
        return RemoteProcess.start(
            node, argv, log_path=_agent_log(node.spec.name, self.spec.workload)
        )

    def _stop_agents(self) -> None:
        def stop(agent: RemoteProcess) -> None:
            if not agent.node.up:
                return  # died with its node
            try:
                agent.stop(grace=10.0)
            except Ocfs2LabError as err:
                log.warning("%s: stopping the operations agent: %s", agent.node.spec.name, err)

        run_parallel(self._agents, stop)

    def _close_clients(self) -> None:
        for client in self._every_client:
            with contextlib.suppress(OSError):
                client.conn.close()

    def stop(self) -> None:
        """Stop sending operations; each node's thread ends after its current operation
        (or when that operation times out). Idempotent."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.spec.op_timeout_s + 10)
        if self._threads:
            self._threads = []
            counts = self.history.counts()
            self._note(f"{self.describe()} stopped: {len(self._ops)} operations {counts}")

    # -- operations ---------------------------------------------------------------------
    def _choose(self, rng: random.Random, node: str) -> tuple[str, str, Any]:
        """(f, key, value) of the next operation."""
        spec, kind = self.spec, self._kind
        key = f"{_PREFIX[kind]}{rng.randrange(spec.keys)}"
        if kind == "counter":
            return "incr", key, None
        if rng.random() < spec.read_share:
            return "read", key, None
        if kind == "log":
            return "append", key, f"{node}-{next(self._value)}"
        return "write", key, next(self._value)

    def _work(self, client: _Client) -> None:
        rng = random.Random(f"{self.spec.seed}/{client.process}")  # noqa: S311 - a seeded workload
        while not self._stop.is_set() and not client.dead:
            self.run_op(client.name, *self._choose(rng, client.name))

    def run_op(self, node: str, f: str, key: str, value: Any = None) -> Op:
        """Run one operation on ``node`` now and record it.

        Raises:
            SpecError: ``node`` has no agent, or its process died earlier.
        """
        client = self._clients.get(node)
        if client is None or client.dead:
            raise SpecError("node", node, "has no live operations agent")
        request = {
            "id": next(client.request_id),
            "f": f,
            "key": key,
            "value": value,
            "kind": self._kind,
        }
        index = next(self._index)
        invoke = time.time()
        answer: dict[str, Any] | None = None
        try:
            client.conn.settimeout(self.spec.op_timeout_s)
            client.stream.write((json.dumps(request) + "\n").encode())
            line = client.stream.readline()
            complete = time.time()
            answer = json.loads(line) if line else None
        except (OSError, ValueError):
            answer = None
        if answer is None:
            client.dead = True
            op = Op(index, client.process, node, f, key, value, invoke, None, Outcome.UNKNOWN)
        elif answer.get("ok"):
            result = answer.get("value") if f in ("read", "incr") else value
            op = Op(index, client.process, node, f, key, result, invoke, complete)
        else:
            error = str(answer.get("error"))
            op = Op(
                index, client.process, node, f, key, value, invoke, complete, Outcome.FAIL, error
            )
        with self._ops_lock:
            self._ops.append(op)
        return op

    @property
    def _kind(self) -> str:
        """What the workload's files hold, for the agent's reads: register, log or counter."""
        return {"register": "register", "append": "log"}.get(self.spec.workload, "counter")

    def keys(self) -> list[str]:
        """Every key the workload uses."""
        return [f"{_PREFIX[self._kind]}{k}" for k in range(self.spec.keys)]

    def final_reads(self, node: str | None = None) -> list[Op]:
        """Stop the workers, then read every key from ``node`` (default: the first node
        whose agent is alive): the reads the checkers compare with what was acknowledged.

        Raises:
            HostError: No node's agent is alive.
        """
        self.stop()
        alive = [c.name for c in self._clients.values() if not c.dead and c.node.up]
        chosen = node or (alive[0] if alive else None)
        if chosen is None:
            raise HostError("no node's operations agent is alive for the final reads")
        return [self.run_op(chosen, "read", key) for key in self.keys()]

    # -- results --------------------------------------------------------------------------
    @property
    def history(self) -> History:
        """Every operation so far."""
        with self._ops_lock:
            return History(list(self._ops))

    def check(self) -> CheckResult:
        """Run the workload's checker over the history."""
        history = self.history
        if self.spec.checker == "register":
            return check_registers(history)
        if self.spec.checker == "append":
            return check_appends(history)
        return check_mutex(history)

    def _note(self, text: str) -> None:
        if self.timeline is not None:
            self.timeline.record(LabEventKind.NOTE, text, data={"workload": self.spec.workload})
