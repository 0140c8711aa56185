"""The lab's ledger on a host: what a lab created there, written down before it exists.

Every object a lab creates on a host (a file, a loop device, a DRBD resource, a loaded
module, a Docker object) is recorded in ``/var/lib/ocfs2lab/labs/<lab id>.json`` on that
host the moment before it is created. ``cleanup`` reads the ledgers to find exactly what the
labs own, even after the process that built them was killed with SIGKILL, and nothing else.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

from attrs import frozen

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.host.base import Shell

#: The lab's directory on a machine (its ledgers and backups).
STATE_ROOT = "/var/lib/ocfs2lab"
LEDGER_DIR = f"{STATE_ROOT}/labs"
#: Where the previous content of files a lab writes is kept (``<dir>/<lab id>/``), until the
#: lab's ledger is empty.
BACKUP_DIR = f"{STATE_ROOT}/backups"


def new_lab_id() -> str:
    """A fresh lab id: ``lab`` and 8 hex digits."""
    return f"lab{secrets.token_hex(4)}"


def check_lab_id(lab_id: str) -> str:
    """Validate a lab id (it names files and labels).

    Raises:
        SpecError: Not 1-32 letters and digits.
    """
    if not isinstance(lab_id, str) or not lab_id.isascii() or not lab_id.isalnum():
        raise SpecError("lab_id", lab_id, "must be letters and digits only")
    if not 1 <= len(lab_id) <= 32:
        raise SpecError("lab_id", lab_id, "must be 1 to 32 characters")
    return lab_id


@frozen
class Entry:
    """One thing a lab created: its kind and what identifies it."""

    kind: str
    key: str
    data: dict[str, Any]


def parse_ledger(text: str) -> list[Entry]:
    """Read a ledger file.

    Raises:
        ParseError: Not a ledger.
    """
    try:
        raw = json.loads(text)
        return [Entry(e["kind"], e["key"], dict(e.get("data", {}))) for e in raw["entries"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ParseError("ocfs2lab ledger", str(err), text=text) from err


def render_ledger(lab_id: str, entries: list[Entry]) -> str:
    """Write a ledger file's text."""
    body = {
        "lab": lab_id,
        "entries": [{"kind": e.kind, "key": e.key, "data": e.data} for e in entries],
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


class Ledger:
    """The ledger of one lab on one host.

    Args:
        host: Where the ledger lives.
        lab_id: The lab's id.
    """

    def __init__(self, host: Shell, lab_id: str) -> None:
        self.host = host
        self.lab_id = check_lab_id(lab_id)
        self.path = f"{LEDGER_DIR}/{lab_id}.json"
        self._entries: list[Entry] | None = None
        self._lock = threading.Lock()

    def entries(self) -> list[Entry]:
        """What the ledger lists (read from the host the first time)."""
        if self._entries is None:
            if self.host.exists(self.path):
                self._entries = parse_ledger(self.host.get_file(self.path).decode())
            else:
                self._entries = []
        return list(self._entries)

    def owns(self, kind: str, key: str) -> bool:
        """True when this lab recorded ``kind``/``key``."""
        return any(e.kind == kind and e.key == key for e in self.entries())

    def record(self, kind: str, key: str, **data: Any) -> None:
        """Write down that the lab is about to create ``kind``/``key``."""
        with self._lock:
            current = [e for e in self.entries() if not (e.kind == kind and e.key == key)]
            current.append(Entry(kind, key, data))
            self._write(current)

    def forget(self, kind: str, key: str) -> None:
        """Strike ``kind``/``key`` once it is gone; the ledger file goes with its last entry."""
        with self._lock:
            current = [e for e in self.entries() if not (e.kind == kind and e.key == key)]
            if current:
                self._write(current)
            else:
                backups = f"{BACKUP_DIR}/{self.lab_id}"
                self.host.run(["rm", "-rf", self.path, backups], timeout=30)
                # The lab's own directories go too once no lab uses them: the machine is as
                # it was found.
                self.host.run(
                    ["rmdir", "--ignore-fail-on-non-empty", BACKUP_DIR, LEDGER_DIR, STATE_ROOT],
                    check=False,
                    timeout=30,
                )
                self._entries = []

    def _write(self, entries: list[Entry]) -> None:
        # One command: the new ledger replaces the old at once (a rename), and is on disk
        # before the change it announces (sync), so a crash or a power cut keeps it.
        script = (
            'umask 077; mkdir -p "$1" && cat > "$2.tmp" && sync "$2.tmp" && mv -f "$2.tmp" "$2"'
        )
        self.host.run(
            ["sh", "-c", script, "sh", LEDGER_DIR, self.path],
            input=render_ledger(self.lab_id, entries),
            timeout=30,
        )
        self._entries = entries


def all_ledgers(host: Shell) -> dict[str, list[Entry]]:
    """Every lab ledger on ``host``, by lab id."""
    res = host.run(["ls", "-1", LEDGER_DIR], check=False, timeout=30)
    found: dict[str, list[Entry]] = {}
    if not res.ok:
        return found
    for name in res.stdout.split():
        if name.endswith(".json"):
            lab_id = name.removesuffix(".json")
            found[lab_id] = Ledger(host, lab_id).entries()
    return found
