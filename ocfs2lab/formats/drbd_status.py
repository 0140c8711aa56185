"""``drbdadm status`` output (DRBD 9 and 8.4 utils).

The format is ``drbdsetup status``'s (drbd-utils ``user/v9/drbdsetup.c`` and
``user/v84/drbdsetup.c``): a resource line at column 0, devices at column 2 (``disk:``, or
``volume:N`` first), connections at column 2 (peer name first), peer devices at column 4;
``wrap_printf`` wraps long lines at 80 columns onto lines indented by 4 to 8 blanks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from attrs import frozen

from ocfs2lab.errors import ParseError
from ocfs2lab.formats._text import require_text, strip_ansi

__all__ = [
    "DrbdStatusConnection",
    "DrbdStatusDevice",
    "DrbdStatusPeerDevice",
    "DrbdStatusResource",
    "parse_drbd_status",
]

_WHAT_STATUS = "drbdadm status"


def _pairs(tokens: Iterable[str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, _, v in (t.partition(":") for t in tokens))


def _lookup(fields: tuple[tuple[str, str], ...], key: str) -> str | None:
    found = None
    for k, v in fields:
        if k == key:
            found = v
    return found


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and re.fullmatch(r"-?[0-9]+", text) else None


@frozen
class DrbdStatusDevice:
    """A local volume (``disk:UpToDate`` line).

    Attributes:
        volume: Volume number when printed (``volume:N``), ``None`` for the implicit
            single volume 0.
        disk: Local disk state.
        fields: Every ``key:value`` of the entry, in order (``minor``, ``quorum``, ``size``...).
    """

    volume: int | None
    disk: str | None
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None``."""
        return _lookup(self.fields, key)


@frozen
class DrbdStatusPeerDevice:
    """A peer's view of a volume (``peer-disk:UpToDate`` line under a connection).

    Attributes:
        volume: Volume number when printed.
        replication: Replication state when printed (``SyncSource``, ``Established`` with
            ``-v``...); ``None`` means established.
        peer_disk: The peer's disk state.
        done: Resync progress in percent, when syncing.
        fields: Every ``key:value`` of the entry, in order.
    """

    volume: int | None
    replication: str | None
    peer_disk: str | None
    done: float | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None``."""
        return _lookup(self.fields, key)


@frozen
class DrbdStatusConnection:
    """A connection to a peer.

    Attributes:
        name: Peer (connection) name; ``peer`` for 8.4; ``None`` when only a node id is shown.
        node_id: Peer node id when printed.
        connection: Connection state when printed (drbdsetup prints it only when not
            ``Connected``).
        role: Peer role (printed only when connected).
        peer_devices: The peer's volumes (listed only when connected).
        fields: Every ``key:value`` of the entry, in order.
    """

    name: str | None
    node_id: int | None = None
    connection: str | None = None
    role: str | None = None
    peer_devices: tuple[DrbdStatusPeerDevice, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def connected(self) -> bool:
        """The connection is established."""
        return self.connection in (None, "Connected")

    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None``."""
        return _lookup(self.fields, key)


@frozen
class DrbdStatusResource:
    """One resource of ``drbdadm status``.

    Attributes:
        name: Resource name.
        role: Local role.
        suspended: Suspension reason(s) when printed (``no`` with ``-v``).
        devices: Local volumes.
        connections: Connections to peers.
        fields: Every ``key:value`` of the resource line, in order.
    """

    name: str
    role: str | None
    suspended: str | None = None
    devices: tuple[DrbdStatusDevice, ...] = ()
    connections: tuple[DrbdStatusConnection, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """The value of ``key``, or ``None``."""
        return _lookup(self.fields, key)


# wrap_printf() continues a wrapped resource line at 4 blanks, a device or connection line
# at 6, a peer-device line at 8.
_WRAP_INDENT = {"resource": 4, "device": 6, "connection": 6, "peer": 8}


class _Entry:
    def __init__(self, kind: str, head: str | None, line: int) -> None:
        self.kind = kind
        self.head = head
        self.line = line
        self.tokens: list[str] = []
        self.children: list[_Entry] = []


def _check_tokens(tokens: list[str], lineno: int, raw: str) -> None:
    for token in tokens:
        key, sep, _ = token.partition(":")
        if not sep or not key:
            raise ParseError(
                _WHAT_STATUS, f"expected key:value, got {token!r}", line=lineno, text=raw
            )


def _build_status(entry: _Entry) -> DrbdStatusResource:
    fields = _pairs(entry.tokens)
    devices, connections = [], []
    for child in entry.children:
        cfields = _pairs(child.tokens)
        if child.kind == "device":
            devices.append(
                DrbdStatusDevice(
                    volume=_int_or_none(_lookup(cfields, "volume")),
                    disk=_lookup(cfields, "disk"),
                    fields=cfields,
                )
            )
            continue
        peers = []
        for grand in child.children:
            gfields = _pairs(grand.tokens)
            done = _lookup(gfields, "done")
            try:
                done_value = float(done) if done is not None else None
            except ValueError:
                done_value = None
            peers.append(
                DrbdStatusPeerDevice(
                    volume=_int_or_none(_lookup(gfields, "volume")),
                    replication=_lookup(gfields, "replication"),
                    peer_disk=_lookup(gfields, "peer-disk"),
                    done=done_value,
                    fields=gfields,
                )
            )
        connections.append(
            DrbdStatusConnection(
                name=child.head,
                node_id=_int_or_none(_lookup(cfields, "node-id")),
                connection=_lookup(cfields, "connection"),
                role=_lookup(cfields, "role"),
                peer_devices=tuple(peers),
                fields=cfields,
            )
        )
    assert entry.head is not None
    return DrbdStatusResource(
        name=entry.head,
        role=_lookup(fields, "role"),
        suspended=_lookup(fields, "suspended"),
        devices=tuple(devices),
        connections=tuple(connections),
        fields=fields,
    )


def parse_drbd_status(text: str) -> tuple[DrbdStatusResource, ...]:
    """Parse ``drbdadm status`` / ``drbdsetup status`` output (DRBD 9 and 8.4 utils).

    Colour escapes are stripped; ``--verbose`` and ``--statistics`` output is accepted
    (extra ``key:value`` pairs land in ``fields``). ``--json`` output is not this format.

    Args:
        text: The command's stdout.

    Returns:
        The resources in order; empty for "# No currently configured DRBD found.".

    Raises:
        ParseError: A line that fits no level of the format (named by number).
    """
    require_text(text, _WHAT_STATUS)
    resources: list[_Entry] = []
    resource: _Entry | None = None
    last: _Entry | None = None
    connection: _Entry | None = None
    for index, raw in enumerate(text.split("\n")):
        lineno = index + 1
        line = strip_ansi(raw).rstrip("\r").rstrip()
        if line.strip() == "":
            continue
        if line.startswith("#"):
            continue  # "# No currently configured DRBD found."
        indent = len(line) - len(line.lstrip(" "))
        if "\t" in line[: indent + 1]:
            raise ParseError(_WHAT_STATUS, "tab in indentation", line=lineno, text=raw)
        tokens = line.split()
        if indent == 0:
            name, rest = tokens[0], tokens[1:]
            if ":" in name:
                raise ParseError(
                    _WHAT_STATUS,
                    "a resource line starts with the resource name",
                    line=lineno,
                    text=raw,
                )
            _check_tokens(rest, lineno, raw)
            resource = _Entry("resource", name, lineno)
            resource.tokens.extend(rest)
            resources.append(resource)
            last, connection = resource, None
            continue
        if resource is None or last is None:
            raise ParseError(
                _WHAT_STATUS, "indented line before any resource", line=lineno, text=raw
            )
        if indent == 2:
            first = tokens[0]
            if first.startswith(("volume:", "disk:")):
                _check_tokens(tokens, lineno, raw)
                entry = _Entry("device", None, lineno)
                entry.tokens.extend(tokens)
                connection = None
            else:
                head: str | None = None
                rest = tokens
                if ":" not in first:
                    head, rest = first, tokens[1:]
                _check_tokens(rest, lineno, raw)
                entry = _Entry("connection", head, lineno)
                entry.tokens.extend(rest)
                connection = entry
            resource.children.append(entry)
            last = entry
            continue
        if indent == 4 and connection is not None and last.kind in ("connection", "peer"):
            _check_tokens(tokens, lineno, raw)
            entry = _Entry("peer", None, lineno)
            entry.tokens.extend(tokens)
            connection.children.append(entry)
            last = entry
            continue
        if indent >= _WRAP_INDENT[last.kind]:
            _check_tokens(tokens, lineno, raw)
            last.tokens.extend(tokens)  # a wrapped line continues the entry above
            continue
        raise ParseError(
            _WHAT_STATUS, f"unexpected indentation of {indent} blanks", line=lineno, text=raw
        )
    return tuple(_build_status(r) for r in resources)
