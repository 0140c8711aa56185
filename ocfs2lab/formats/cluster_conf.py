"""o2cb's ``/etc/ocfs2/cluster.conf``: typed values, a renderer and a parser.

The format is the one ocfs2-tools' ``o2cb_ctl/jconfig.c`` reads and writes (1.8.7):

* a stanza starts with ``name:`` at column 0 (``cluster:``, ``node:``, ``heartbeat:``);
  spaces and tabs may follow the colon, nothing else;
* its attributes follow as ``<space or tab>+key<blanks>=<blanks>value`` lines; keys are
  ``[A-Za-z0-9_]+``; the value runs to the end of the line, o2cb strips the blanks before it
  and all whitespace after it; a value line ending in a backslash continues on the next line;
* a blank line (or a line of blanks) ends the stanza; an attribute outside a stanza is an
  error;
* ``#`` at column 0 starts a comment line (it does not end the stanza); ``#`` anywhere else
  is text (in a value) or an error (before a key).

o2cb writes the file from scratch each time it changes it: every ``cluster:`` stanza first,
then all ``heartbeat:`` and ``node:`` stanzas, and the attributes of each stanza in the
iteration order of a GLib hash table (``o2cb_config.c`` stores them in ``GHashTable`` s). That
order is not alphabetical and not the order o2cb inserts them; `render_cluster_conf`
reproduces it exactly (checked byte for byte against files o2cb 1.8.7 wrote, see
``tests/data/ocfs2-tools``), so a file rendered here and a file o2cb rewrote compare equal.

When it loads the file o2cb refuses (exit 1, "while loading cluster configuration file"):
a stanza header with anything but blanks after the colon, a ``#`` after leading blanks, an
attribute after a blank line, CRLF line ends, a heartbeat mode other than local/global, a
missing ``node_count``, a node without name, number, ip_address or ip_port, an address that
is not a dotted IPv4 address, a heartbeat stanza without a region, two clusters or two nodes
with one name, and a region listed twice. This parser refuses the same, plus what o2cb would
silently drop (a node or heartbeat stanza naming no known cluster, a stanza of an unknown
kind) and what the kernel refuses later at ``register-cluster`` (node numbers above 254, two
nodes with one number or one address, a port of 0 or above 65534).
Unknown keys inside known stanzas are kept (``extra``), as o2cb keeps reading such files;
note that o2cb drops them whenever it rewrites the file.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import Attribute, Factory, define, field, frozen

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats._text import require_text

__all__ = [
    "DEFAULT_PORT",
    "ClusterConf",
    "ClusterStanza",
    "HeartbeatMode",
    "HeartbeatStanza",
    "NodeStanza",
    "parse_cluster_conf",
    "parse_cluster_confs",
    "render_cluster_conf",
]

WHAT = "cluster.conf"
#: o2net's default TCP port (what ``o2cb add-node`` writes without ``--port``).
DEFAULT_PORT = 7777
#: Kernel ``O2NM_MAX_NODES`` is 255: node numbers are 0..254.
MAX_NODE_NUMBER = 254
_UINT_MAX = (1 << 32) - 1

_KEY = re.compile(r"[A-Za-z0-9_]+")
_HEADER = re.compile(r"([A-Za-z0-9_]+):[ \t]*")
_ATTR = re.compile(r"[ \t]+([A-Za-z0-9_]+)[ \t]*=[ \t]*(.*)")
_DECIMAL = re.compile(r"\+?[0-9]+")
# What g_strchomp() strips from the end of a value (isspace in the C locale).
_CHOMP = " \t\n\r\f\v"


class HeartbeatMode(enum.StrEnum):
    """The cluster's heartbeat mode (``heartbeat_mode``; o2cb reads it case-insensitively)."""

    LOCAL = "local"
    GLOBAL = "global"


def _mode(value: HeartbeatMode | str) -> HeartbeatMode:
    if isinstance(value, HeartbeatMode):
        return value
    if isinstance(value, str):
        try:
            return HeartbeatMode(value.lower())
        except ValueError:
            pass
    raise SpecError("cluster.heartbeat_mode", value, "must be 'local' or 'global'")


def _check_text(field_name: str, value: object, *, multiline: bool = False) -> None:
    """Reject a value o2cb would not read back as the same string."""
    if not isinstance(value, str):
        raise SpecError(field_name, value, "must be a string")
    if "\0" in value:
        raise SpecError(field_name, value, "must not contain a NUL character")
    if "\r" in value:
        raise SpecError(field_name, value, "must not contain a carriage return")
    if not multiline and "\n" in value:
        raise SpecError(field_name, value, "must be a single line")
    if value != value.lstrip(" \t") or value != value.rstrip(_CHOMP):
        raise SpecError(field_name, value, "must not start or end with whitespace (o2cb strips it)")
    for part in value.split("\n")[:-1] if multiline else ():
        if part.endswith("\\"):
            raise SpecError(
                field_name, value, "a line must not end in a backslash (o2cb reads a continuation)"
            )
    if value.endswith("\\"):
        raise SpecError(
            field_name, value, "must not end in a backslash (o2cb reads a line continuation)"
        )


def _required_text(instance: object, attribute: Attribute[Any], value: object) -> None:
    name = f"{type(instance).__name__.removesuffix('Stanza').lower()}.{attribute.name}"
    _check_text(name, value)
    if value == "":
        raise SpecError(name, value, "must not be empty")


def _node_number(instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("node.number", value, "must be an integer")
    if not 0 <= value <= MAX_NODE_NUMBER:
        raise SpecError(
            "node.number", value, f"must be 0..{MAX_NODE_NUMBER} (kernel O2NM_MAX_NODES)"
        )


def _port(instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("node.ip_port", value, "must be an integer")
    if not 0 < value < 65535:
        raise SpecError(
            "node.ip_port", value, "must be 1..65534 (the kernel's o2nm refuses 0 and 65535)"
        )


def _node_count(instance: object, attribute: Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("cluster.node_count", value, "must be an integer")
    if not 0 <= value <= _UINT_MAX:
        raise SpecError("cluster.node_count", value, "must be 0..4294967295 (o2cb's range)")


def _ipv4(value: ipaddress.IPv4Address | str) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    try:
        return ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise SpecError(
            "node.ip_address", value, "must be a dotted IPv4 address (o2cb uses inet_pton)"
        ) from None


def _extra(value: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    try:
        items = tuple((k, v) for k, v in value)
    except (TypeError, ValueError):
        raise SpecError("extra", value, "must be (key, value) pairs") from None
    return items


def _make_extra_validator(known: frozenset[str], owner: str) -> Any:
    def check(
        instance: object, attribute: Attribute[Any], value: tuple[tuple[str, str], ...]
    ) -> None:
        seen: set[str] = set()
        for key, val in value:
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise SpecError(f"{owner}.extra", key, "keys must match [A-Za-z0-9_]+")
            if key in known:
                raise SpecError(
                    f"{owner}.extra", key, f"is a known {owner} key: set the attribute instead"
                )
            if key in seen:
                raise SpecError(f"{owner}.extra", key, "is given twice")
            seen.add(key)
            _check_text(f"{owner}.extra[{key}]", val, multiline=True)

    return check


_CLUSTER_KEYS = ("name", "heartbeat_mode", "node_count")
_NODE_KEYS = ("cluster", "name", "ip_address", "ip_port", "number")
_HEARTBEAT_KEYS = ("cluster", "region")


@frozen
class ClusterStanza:
    """A ``cluster:`` stanza.

    Attributes:
        name: Cluster name. ``o2cb add-cluster`` allows at most 16 alphanumeric characters;
            the file format itself takes any single-line text.
        node_count: The ``node_count`` value as written (o2cb keeps it, even when it
            differs from the number of node stanzas).
        heartbeat_mode: ``local`` (the default when the key is absent) or ``global``.
        extra: Unknown keys, in file order, kept as text.
    """

    name: str = field(validator=_required_text)
    node_count: int = field(validator=_node_count)
    heartbeat_mode: HeartbeatMode = field(default=HeartbeatMode.LOCAL, converter=_mode)
    extra: tuple[tuple[str, str], ...] = field(
        default=(),
        converter=_extra,
        validator=_make_extra_validator(frozenset(_CLUSTER_KEYS), "cluster"),
    )


@frozen
class NodeStanza:
    """A ``node:`` stanza.

    Attributes:
        name: Node name; o2cb marks as local the node whose name equals the hostname (up to
            the first dot).
        number: Node number, 0..254.
        ip_address: Interconnect IPv4 address.
        cluster: Name of the cluster the node belongs to.
        ip_port: o2net TCP port.
        extra: Unknown keys, in file order, kept as text.
    """

    name: str = field(validator=_required_text)
    number: int = field(validator=_node_number)
    ip_address: ipaddress.IPv4Address = field(converter=_ipv4)
    cluster: str = field(validator=_required_text)
    ip_port: int = field(default=DEFAULT_PORT, validator=_port)
    extra: tuple[tuple[str, str], ...] = field(
        default=(),
        converter=_extra,
        validator=_make_extra_validator(frozenset(_NODE_KEYS), "node"),
    )


@frozen
class HeartbeatStanza:
    """A ``heartbeat:`` stanza: one heartbeat region of a cluster.

    Attributes:
        region: The region: the UUID of an OCFS2 volume (32 hex digits, as o2cb writes it).
        cluster: Name of the cluster the region belongs to.
        extra: Unknown keys, in file order, kept as text.
    """

    region: str = field(validator=_required_text)
    cluster: str = field(validator=_required_text)
    extra: tuple[tuple[str, str], ...] = field(
        default=(),
        converter=_extra,
        validator=_make_extra_validator(frozenset(_HEARTBEAT_KEYS), "heartbeat"),
    )


def _nodes(value: Iterable[NodeStanza]) -> tuple[NodeStanza, ...]:
    items = tuple(value)
    for item in items:
        if not isinstance(item, NodeStanza):
            raise SpecError("cluster.nodes", item, "must hold NodeStanza values")
    return items


def _heartbeats(value: Iterable[HeartbeatStanza]) -> tuple[HeartbeatStanza, ...]:
    items = tuple(value)
    for item in items:
        if not isinstance(item, HeartbeatStanza):
            raise SpecError("cluster.heartbeats", item, "must hold HeartbeatStanza values")
    return items


@frozen
class ClusterConf:
    """One cluster of a ``cluster.conf``: its stanza, its nodes and its heartbeat regions.

    Construction checks what o2cb or the kernel would refuse later: every node and region
    names this cluster, node names, numbers and addresses are unique, regions are unique.

    Attributes:
        cluster: The ``cluster:`` stanza.
        nodes: The ``node:`` stanzas, in file order.
        heartbeats: The ``heartbeat:`` stanzas, in file order.
    """

    cluster: ClusterStanza
    nodes: tuple[NodeStanza, ...] = field(default=(), converter=_nodes)
    heartbeats: tuple[HeartbeatStanza, ...] = field(default=(), converter=_heartbeats)

    def __attrs_post_init__(self) -> None:
        name = self.cluster.name
        names: set[str] = set()
        numbers: set[int] = set()
        addresses: set[ipaddress.IPv4Address] = set()
        for node in self.nodes:
            if node.cluster != name:
                raise SpecError(
                    "node.cluster", node.cluster, f"node {node.name!r} must name cluster {name!r}"
                )
            if node.name in names:
                raise SpecError("node.name", node.name, "is given twice (o2cb refuses the file)")
            if node.number in numbers:
                raise SpecError(
                    "node.number", node.number, "is given twice (the kernel refuses it)"
                )
            if node.ip_address in addresses:
                raise SpecError(
                    "node.ip_address",
                    str(node.ip_address),
                    "is given twice (the kernel refuses it)",
                )
            names.add(node.name)
            numbers.add(node.number)
            addresses.add(node.ip_address)
        regions: set[str] = set()
        for hb in self.heartbeats:
            if hb.cluster != name:
                raise SpecError(
                    "heartbeat.cluster", hb.cluster, f"region {hb.region!r} must name {name!r}"
                )
            if hb.region in regions:
                raise SpecError(
                    "heartbeat.region", hb.region, "is given twice (o2cb refuses the file)"
                )
            regions.add(hb.region)

    @classmethod
    def build(
        cls,
        name: str,
        nodes: Iterable[tuple[str, int, ipaddress.IPv4Address | str]],
        *,
        regions: Iterable[str] = (),
        heartbeat_mode: HeartbeatMode | str = HeartbeatMode.LOCAL,
        port: int = DEFAULT_PORT,
    ) -> ClusterConf:
        """Build a cluster the way a run of ``o2cb add-cluster/add-node/add-heartbeat`` would.

        Args:
            name: Cluster name.
            nodes: ``(name, number, address)`` for each node, in order.
            regions: Heartbeat regions (volume UUIDs), in order.
            heartbeat_mode: ``local`` or ``global``.
            port: o2net port of every node.

        Returns:
            The cluster, with ``node_count`` equal to the number of nodes.

        Raises:
            SpecError: A value breaks a rule of o2cb or the kernel.
        """
        node_stanzas = tuple(
            NodeStanza(name=n, number=k, ip_address=ip, cluster=name, ip_port=port)
            for n, k, ip in nodes
        )
        return cls(
            cluster=ClusterStanza(
                name=name, node_count=len(node_stanzas), heartbeat_mode=heartbeat_mode
            ),
            nodes=node_stanzas,
            heartbeats=tuple(HeartbeatStanza(region=r, cluster=name) for r in regions),
        )

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.cluster.name

    def node(self, name: str) -> NodeStanza:
        """The node called ``name``.

        Raises:
            KeyError: No such node.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def render(self) -> str:
        """This cluster alone as a ``cluster.conf`` file (see `render_cluster_conf`)."""
        return render_cluster_conf(self)


# ----------------------------------------------------------------------------------------
# Rendering: o2cb's output order is GLib's GHashTable iteration order.


def _g_str_hash(text: str) -> int:
    """GLib ``g_str_hash``: djb2 over the bytes as *signed* chars, 32-bit."""
    h = 5381
    for byte in text.encode():
        signed = byte - 256 if byte >= 128 else byte
        h = (h * 33 + signed) & 0xFFFFFFFF
    return h


def _ghash_order(keys: Sequence[str]) -> list[str]:
    """Iteration order of a fresh GLib (>= 2.40) ``GHashTable`` after inserting ``keys``.

    The table starts with 8 buckets (index = ``hash * 11 % 7``, triangular probing) and only
    grows at its 8th entry; callers pass at most 7 distinct keys.
    """
    size, mod = 8, 7
    slots: list[str | None] = [None] * size
    for key in keys:
        if key in slots:
            continue
        if slots.count(None) == 1:
            raise ValueError("more keys than a fresh GHashTable holds without resizing")
        hashed = _g_str_hash(key)
        hashed = max(hashed, 2)  # GLib reserves hash values 0 and 1 (unused, tombstone)
        index = ((hashed * 11) & 0xFFFFFFFF) % mod
        step = 0
        while slots[index] is not None:
            step += 1
            index = (index + step) & (size - 1)
        slots[index] = key
    return [key for key in slots if key is not None]


# The order o2cb_config_store() sets the attributes in, and the order that results.
_CLUSTER_ORDER = tuple(_ghash_order(_CLUSTER_KEYS))
_NODE_ORDER = tuple(_ghash_order(_NODE_KEYS))
_HEARTBEAT_ORDER = tuple(_ghash_order(_HEARTBEAT_KEYS))


def _attr_lines(pairs: Iterable[tuple[str, str]]) -> str:
    out = []
    for key, value in pairs:
        if value == "":
            out.append(f"\t{key} =\n")
        else:
            out.append(f"\t{key} = " + value.replace("\n", "\\\n") + "\n")
    return "".join(out)


def _cluster_values(c: ClusterStanza) -> dict[str, str]:
    return {
        "name": c.name,
        "heartbeat_mode": c.heartbeat_mode.value,
        "node_count": str(c.node_count),
    }


def _node_values(n: NodeStanza) -> dict[str, str]:
    return {
        "cluster": n.cluster,
        "name": n.name,
        "ip_address": str(n.ip_address),
        "ip_port": str(n.ip_port),
        "number": str(n.number),
    }


def _heartbeat_values(h: HeartbeatStanza) -> dict[str, str]:
    return {"cluster": h.cluster, "region": h.region}


def render_cluster_conf(confs: ClusterConf | Iterable[ClusterConf]) -> str:
    """Render one or more clusters as o2cb writes ``cluster.conf``.

    The output is byte-identical to the file ``o2cb`` (ocfs2-tools 1.8.7) writes for the same
    clusters, nodes and regions in the same order. Unknown keys (``extra``), which o2cb never
    writes, follow the known keys of their stanza.

    Args:
        confs: A cluster, or several (each name once).

    Returns:
        The file's text; empty for no clusters.

    Raises:
        SpecError: Two clusters share a name.
    """
    clusters = (confs,) if isinstance(confs, ClusterConf) else tuple(confs)
    seen: set[str] = set()
    for conf in clusters:
        if not isinstance(conf, ClusterConf):
            raise SpecError("confs", conf, "must be ClusterConf values")
        if conf.name in seen:
            raise SpecError("cluster.name", conf.name, "is given twice (o2cb refuses the file)")
        seen.add(conf.name)

    # o2cb_config_store(): per cluster, add the cluster stanza, then its heartbeat stanzas,
    # then its node stanzas. Stanzas of one kind keep that order (a GList per kind); the
    # kinds come out in the GHashTable order of their first insertion.
    inserted: list[str] = []
    blocks: dict[str, list[str]] = {"cluster": [], "heartbeat": [], "node": []}
    for conf in clusters:
        inserted.append("cluster")
        values = _cluster_values(conf.cluster)
        blocks["cluster"].append(
            _attr_lines([(k, values[k]) for k in _CLUSTER_ORDER] + list(conf.cluster.extra))
        )
        for hb in conf.heartbeats:
            inserted.append("heartbeat")
            values = _heartbeat_values(hb)
            blocks["heartbeat"].append(
                _attr_lines([(k, values[k]) for k in _HEARTBEAT_ORDER] + list(hb.extra))
            )
        for node in conf.nodes:
            inserted.append("node")
            values = _node_values(node)
            blocks["node"].append(
                _attr_lines([(k, values[k]) for k in _NODE_ORDER] + list(node.extra))
            )
    out = []
    for kind in _ghash_order(inserted):
        for body in blocks[kind]:
            out.append(f"{kind}:\n{body}\n")
    return "".join(out)


# ----------------------------------------------------------------------------------------
# Parsing


@define
class RawStanza:
    """One stanza as read, before typing: what the list and conf parsers share.

    Attributes:
        kind: The stanza name (``cluster``, ``node``, ...).
        line: 1-based line number of its header.
        text: The header line.
        attrs: ``key -> (value, line)``; a key given twice keeps its last value.
    """

    kind: str
    line: int
    text: str
    attrs: dict[str, tuple[str, int]] = Factory(dict)


def _header_problem(line: str) -> str:
    head = _KEY.match(line)
    if head is None:
        return f"invalid character {line[0]!r} at the start of a line"
    rest = line[head.end() :]
    if rest == "":
        return "stanza header without ':' (attribute lines must be indented)"
    if rest.startswith(":"):
        return "only blanks may follow the ':' of a stanza header"
    return f"invalid character {rest[0]!r} in stanza name (a header is 'name:' at column 0)"


def _attr_problem(line: str) -> str:
    stripped = line.lstrip(" \t")
    if stripped.startswith("#"):
        return "a comment must start at column 0 ('#' after blanks is an error)"
    if _HEADER.fullmatch(stripped):
        return "a stanza header must start at column 0"
    if not _KEY.match(stripped):
        return f"invalid character {stripped[0]!r} in attribute name"
    return "expected 'key = value' (a key of [A-Za-z0-9_], then '=')"


def lex_stanzas(text: str, what: str = WHAT) -> list[RawStanza]:
    """Split stanza-format text (``cluster.conf``, ``o2cb list-*``) as jconfig.c does.

    Args:
        text: The text.
        what: The format's name in errors.

    Returns:
        The stanzas in order.

    Raises:
        ParseError: A line jconfig.c refuses; the error names the line and the problem.
    """
    require_text(text, what)
    stanzas: list[RawStanza] = []
    current: RawStanza | None = None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        lineno, line = i + 1, lines[i]
        i += 1
        if "\r" in line:
            raise ParseError(
                what,
                "carriage return: DOS (CRLF) line ends, which o2cb refuses",
                line=lineno,
                text=line,
            )
        if "\0" in line:
            raise ParseError(what, "NUL character", line=lineno, text=line)
        if line.strip(" \t") == "":
            current = None  # a blank line ends the stanza
            continue
        if line[0] == "#":
            continue  # a comment; it does not end the stanza
        if line[0] in " \t":
            match = _ATTR.fullmatch(line)
            if match is None:
                raise ParseError(what, _attr_problem(line), line=lineno, text=line)
            key, value = match.group(1), match.group(2)
            if current is None:
                raise ParseError(
                    what,
                    f"attribute {key!r} outside a stanza (a blank line ends a stanza)",
                    line=lineno,
                    text=line,
                )
            while value.endswith("\\"):
                # A backslash before the newline continues the value on the next line,
                # which is taken verbatim.
                value = value[:-1]
                if i >= len(lines):
                    break
                nxt = lines[i]
                if "\r" in nxt or "\0" in nxt:
                    raise ParseError(
                        what, "carriage return or NUL in a continued value", line=i + 1, text=nxt
                    )
                value += "\n" + nxt
                i += 1
            current.attrs.pop(key, None)  # j_config_set_attribute(): the last one wins
            current.attrs[key] = (value.rstrip(_CHOMP), lineno)  # get_attribute() chomps
            continue
        match = _HEADER.fullmatch(line)
        if match is None:
            raise ParseError(what, _header_problem(line), line=lineno, text=line)
        current = RawStanza(kind=match.group(1), line=lineno, text=line)
        stanzas.append(current)
    return stanzas


def _value(raw: RawStanza, key: str, what: str, *, required: bool = True) -> str | None:
    """An attribute's value: ``None`` when absent and not required; never empty."""
    item = raw.attrs.get(key)
    if item is None:
        if not required:
            return None
        raise ParseError(
            what,
            f"{raw.kind}: stanza has no {key!r} (o2cb refuses it)",
            line=raw.line,
            text=raw.text,
        )
    if item[0] == "":
        raise ParseError(
            what, f"{raw.kind}: {key!r} is empty (o2cb refuses it)", line=item[1], text=key
        )
    return item[0]


def _number(raw: RawStanza, key: str, what: str, limit: int) -> int:
    value = _value(raw, key, what)
    assert value is not None
    line = raw.attrs[key][1]
    if not _DECIMAL.fullmatch(value):
        raise ParseError(what, f"{raw.kind}: {key} must be a decimal number", line=line, text=value)
    number = int(value)
    if number > limit:
        raise ParseError(
            what, f"{raw.kind}: {key} is above o2cb's limit {limit}", line=line, text=value
        )
    return number


def _build(raw: RawStanza, what: str, kind: Any, **values: Any) -> Any:
    """``kind(**values)``, with a SpecError turned into a ParseError at the right line."""
    try:
        return kind(**values)
    except SpecError as exc:
        key = exc.field.rsplit(".", 1)[-1].split("[", 1)[0]
        line, text = raw.line, raw.text
        if key in raw.attrs:
            line, text = raw.attrs[key][1], f"{key} = {raw.attrs[key][0]}"
        raise ParseError(what, f"{raw.kind}: {exc.message}", line=line, text=text) from exc


def _extras(raw: RawStanza, known: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, (v, _) in raw.attrs.items() if k not in known)


def cluster_stanza(raw: RawStanza, what: str = WHAT) -> ClusterStanza:
    """Type a ``cluster:`` stanza.

    Raises:
        ParseError: A key is missing or has a value o2cb refuses.
    """
    name = _value(raw, "name", what)
    mode = _value(raw, "heartbeat_mode", what, required=False)
    count = _number(raw, "node_count", what, _UINT_MAX)
    return _build(  # type: ignore[no-any-return]
        raw,
        what,
        ClusterStanza,
        name=name,
        node_count=count,
        heartbeat_mode=HeartbeatMode.LOCAL if mode is None else mode,
        extra=_extras(raw, _CLUSTER_KEYS),
    )


def node_stanza(raw: RawStanza, what: str = WHAT) -> NodeStanza:
    """Type a ``node:`` stanza.

    Raises:
        ParseError: A key is missing or has a value o2cb or the kernel refuses.
    """
    owner = _value(raw, "cluster", what)
    name = _value(raw, "name", what)
    number = _number(raw, "number", what, (1 << 31) - 2)
    address = _value(raw, "ip_address", what)
    port = _number(raw, "ip_port", what, _UINT_MAX)
    return _build(  # type: ignore[no-any-return]
        raw,
        what,
        NodeStanza,
        name=name,
        number=number,
        ip_address=address,
        cluster=owner,
        ip_port=port,
        extra=_extras(raw, _NODE_KEYS),
    )


def heartbeat_stanza(raw: RawStanza, what: str = WHAT) -> HeartbeatStanza:
    """Type a ``heartbeat:`` stanza.

    Raises:
        ParseError: The region or cluster is missing or empty.
    """
    owner = _value(raw, "cluster", what)
    region = _value(raw, "region", what)
    return _build(  # type: ignore[no-any-return]
        raw,
        what,
        HeartbeatStanza,
        region=region,
        cluster=owner,
        extra=_extras(raw, _HEARTBEAT_KEYS),
    )


def assemble(
    what: str,
    clusters: Sequence[tuple[RawStanza, ClusterStanza]],
    members: Sequence[tuple[RawStanza, NodeStanza | HeartbeatStanza]],
) -> tuple[ClusterConf, ...]:
    """Group typed stanzas into clusters, refusing duplicates and orphans by line.

    Raises:
        ParseError: A cluster twice, a member of no known cluster, a duplicated node name,
            number or address, or a duplicated region.
    """
    by_name: dict[str, tuple[RawStanza, ClusterStanza]] = {}
    for raw, stanza in clusters:
        if stanza.name in by_name:
            raise ParseError(
                what,
                f"cluster {stanza.name!r} is defined twice (o2cb refuses it)",
                line=raw.line,
                text=raw.text,
            )
        by_name[stanza.name] = (raw, stanza)
    nodes: dict[str, list[NodeStanza]] = {name: [] for name in by_name}
    beats: dict[str, list[HeartbeatStanza]] = {name: [] for name in by_name}
    seen: dict[tuple[str, str, object], int] = {}
    for raw, member in members:
        owner = member.cluster
        if owner not in by_name:
            raise ParseError(
                what,
                f"{raw.kind}: stanza names cluster {owner!r}, which has no cluster: stanza "
                "(o2cb would silently ignore it)",
                line=raw.attrs["cluster"][1] if "cluster" in raw.attrs else raw.line,
                text=raw.text,
            )
        if isinstance(member, NodeStanza):
            keys: list[tuple[str, object, str]] = [
                ("name", member.name, "o2cb refuses the file"),
                ("number", member.number, "the kernel refuses it at register-cluster"),
                ("ip_address", member.ip_address, "the kernel refuses it at register-cluster"),
            ]
            nodes[owner].append(member)
        else:
            keys = [("region", member.region, "o2cb refuses the file")]
            beats[owner].append(member)
        for key, value, why in keys:
            mark = (owner, f"{raw.kind}.{key}", value)
            line = raw.attrs[key][1] if key in raw.attrs else raw.line
            if mark in seen:
                raise ParseError(
                    what,
                    f"{raw.kind}: {key} {str(value)!r} of cluster {owner!r} is already used "
                    f"at line {seen[mark]} ({why})",
                    line=line,
                    text=f"{key} = {value}",
                )
            seen[mark] = line
    result = []
    for name, (raw, stanza) in by_name.items():
        try:
            conf = ClusterConf(cluster=stanza, nodes=nodes[name], heartbeats=beats[name])
        except SpecError as exc:  # pragma: no cover - the checks above catch these first
            raise ParseError(what, f"cluster {name!r}: {exc.message}", line=raw.line) from exc
        result.append(conf)
    return tuple(result)


def _parse(text: str, what: str) -> tuple[ClusterConf, ...]:
    clusters: list[tuple[RawStanza, ClusterStanza]] = []
    members: list[tuple[RawStanza, NodeStanza | HeartbeatStanza]] = []
    for raw in lex_stanzas(text, what):
        if raw.kind == "cluster":
            clusters.append((raw, cluster_stanza(raw, what)))
        elif raw.kind == "node":
            members.append((raw, node_stanza(raw, what)))
        elif raw.kind == "heartbeat":
            members.append((raw, heartbeat_stanza(raw, what)))
        else:
            raise ParseError(
                what,
                f"unknown stanza {raw.kind!r}: expected cluster, node or heartbeat "
                "(o2cb would silently ignore it)",
                line=raw.line,
                text=raw.text,
            )
    return assemble(what, clusters, members)


def parse_cluster_confs(text: str) -> tuple[ClusterConf, ...]:
    """Parse every cluster of a ``cluster.conf``.

    Args:
        text: The file's text.

    Returns:
        The clusters in file order; empty for a file without ``cluster:`` stanzas.

    Raises:
        ParseError: The text breaks the format, or holds something o2cb or the kernel would
            refuse or silently drop; the error names the line and the problem.
    """
    return _parse(text, WHAT)


def parse_cluster_conf(text: str, cluster: str | None = None) -> ClusterConf:
    """Parse the one cluster of a ``cluster.conf`` (or the one called ``cluster``).

    Args:
        text: The file's text.
        cluster: Name of the cluster to return; needed when the file has several.

    Returns:
        The cluster.

    Raises:
        ParseError: The text is not a valid ``cluster.conf``, has no cluster (of that name),
            or has several and ``cluster`` was not given.
    """
    confs = _parse(text, WHAT)
    if cluster is not None:
        for conf in confs:
            if conf.name == cluster:
                return conf
        raise ParseError(WHAT, f"no cluster named {cluster!r}")
    if not confs:
        raise ParseError(WHAT, "no cluster: stanza")
    if len(confs) > 1:
        names = ", ".join(repr(c.name) for c in confs)
        raise ParseError(WHAT, f"several clusters ({names}): say which one")
    return confs[0]
