"""DRBD resource files (``.res``): typed values, the renderer and the parser.

Resource files follow the syntax ``drbdadm`` (drbd-utils 9.22) reads: for DRBD 9
(``drbdadm``) and for DRBD 8.4 kernels (``drbdadm-84``, which drbdadm hands over to when the
loaded module is 8.4, as the in-tree module of Linux 6.1 and 6.12 is). The renderer writes a
volume-0 resource: device, backing disk and meta-disk at resource level, one ``on HOST``
section per host (``address`` and, for DRBD 9, ``node-id``), option sections (``net``,
``disk``, ...) and, for DRBD 9 with several hosts, a ``connection-mesh`` or explicit
``connection`` sections. The parser reads that, hand-written files of the same shape and
``drbdadm dump`` output (which moves the volume keys into the ``on`` sections for 8.4).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from attrs import Attribute, field, frozen

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats._text import require_text

__all__ = [
    "DEFAULT_DRBD_PORT",
    "MAX_MINOR",
    "MAX_NODE_ID",
    "DrbdConnection",
    "DrbdHost",
    "DrbdResourceConfig",
    "DrbdSection",
    "DrbdSyntax",
    "parse_drbd_res",
    "parse_drbd_res_all",
    "render_drbd_res",
]

#: The conventional first DRBD port.
DEFAULT_DRBD_PORT = 7789
#: DRBD minors are 20 bits wide.
MAX_MINOR = (1 << 20) - 1
#: DRBD 9 node ids are 0..31.
MAX_NODE_ID = 31

# drbdadm's scanner: a STRING token is [a-zA-Z0-9/._-]{1,128}; anything else must be quoted.
_STRING = re.compile(r"[A-Za-z0-9/._-]{1,128}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_OPTION_KEY = re.compile(r"[a-z0-9][a-z0-9-]*")
_SECTIONS = ("options", "net", "disk", "startup", "handlers")
_DIGITS = re.compile(r"[0-9]+")


class DrbdSyntax(enum.StrEnum):
    """Which configuration dialect to write: the running kernel module's."""

    V84 = "8.4"
    V9 = "9"

    @classmethod
    def for_version(cls, version: Sequence[int]) -> DrbdSyntax:
        """The dialect for a kernel module version such as ``(8, 4, 11)`` or ``(9, 2, 9)``.

        Raises:
            SpecError: A version neither 8.4 nor 9.x.
        """
        parts = tuple(version)
        if parts[:2] == (8, 4):
            return cls.V84
        if parts[:1] == (9,):
            return cls.V9
        raise SpecError("drbd.version", parts, "only DRBD 8.4 and 9.x are supported")


# ----------------------------------------------------------------------------------------
# Resource configuration: typed values


def _check_name(field_name: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise SpecError(
            field_name, value, "must be 1-128 of [A-Za-z0-9._-] (drbdadm's name syntax)"
        )


def _name(instance: object, attribute: Attribute[Any], value: object) -> None:
    _check_name(f"drbd.{attribute.name}", value)


def _path(instance: object, attribute: Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "device":
        return
    if not isinstance(value, str) or not _STRING.fullmatch(value):
        raise SpecError(
            f"drbd.{attribute.name}", value, "must be 1-128 of [A-Za-z0-9/._-] (a device path)"
        )
    if attribute.name == "device" and not value.startswith("/dev/"):
        raise SpecError("drbd.device", value, "must be a path under /dev")


def _int_in(low: int, high: int, label: str, *, optional: bool = False) -> Any:
    def check(instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SpecError(f"drbd.{attribute.name}", value, f"must be {low}..{high} ({label})")

    return check


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise SpecError("drbd.host.address", value, "must be an IPv4 or IPv6 address") from None


@frozen
class DrbdHost:
    """One ``on HOST`` section.

    Attributes:
        name: Host name as ``uname -n`` prints it (drbdadm matches it to pick "this host").
        address: Replication address.
        port: Replication TCP port.
        node_id: DRBD 9 node id (0..31); ``None`` lets the renderer number hosts in order.
            Not written for 8.4.
    """

    name: str = field(validator=_name)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = field(converter=_address)
    port: int = field(default=DEFAULT_DRBD_PORT, validator=_int_in(1, 65535, "a TCP port"))
    node_id: int | None = field(
        default=None, validator=_int_in(0, MAX_NODE_ID, "DRBD 9 node ids", optional=True)
    )


def _pair(value: Iterable[str]) -> tuple[str, str]:
    items = tuple(value)
    if len(items) != 2:
        raise SpecError("drbd.connection.hosts", items, "must name two different hosts")
    return items[0], items[1]


@frozen
class DrbdConnection:
    """An explicit DRBD 9 ``connection { host A; host B; }`` between two hosts."""

    hosts: tuple[str, str] = field(converter=_pair)

    @hosts.validator
    def _check(self, attribute: Attribute[Any], value: tuple[str, ...]) -> None:
        if len(value) != 2 or value[0] == value[1]:
            raise SpecError("drbd.connection.hosts", value, "must name two different hosts")
        for name in value:
            _check_name("drbd.connection.hosts", name)


def _options(value: Iterable[Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for item in value:
        try:
            key, args = item
        except (TypeError, ValueError):
            raise SpecError("drbd.section.options", item, "must be (key, args) pairs") from None
        if isinstance(args, str):
            args = (args,)
        out.append((key, tuple(args)))
    return tuple(out)


@frozen
class DrbdSection:
    """An option section such as ``net { protocol C; allow-two-primaries yes; }``.

    Attributes:
        name: ``options``, ``net``, ``disk``, ``startup`` or ``handlers``.
        options: ``(key, args)`` pairs in order; a flag option has no args.
    """

    name: str = field()
    options: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), converter=_options)

    @name.validator
    def _check_name(self, attribute: Attribute[Any], value: object) -> None:
        if value not in _SECTIONS:
            raise SpecError("drbd.section.name", value, f"must be one of {', '.join(_SECTIONS)}")

    @options.validator
    def _check_options(
        self, attribute: Attribute[Any], value: tuple[tuple[str, tuple[str, ...]], ...]
    ) -> None:
        for key, args in value:
            if not isinstance(key, str) or not _OPTION_KEY.fullmatch(key):
                raise SpecError("drbd.section.options", key, "keys are [a-z0-9-] words")
            for arg in args:
                if not isinstance(arg, str) or arg == "" or "\n" in arg or len(arg) > 255:
                    raise SpecError(
                        f"drbd.{self.name}.{key}", arg, "must be 1-255 characters, one line"
                    )

    def get(self, key: str) -> tuple[str, ...] | None:
        """The args of option ``key`` (the last one given), or ``None``."""
        found = None
        for k, args in self.options:
            if k == key:
                found = args
        return found


def _hosts(value: Iterable[DrbdHost]) -> tuple[DrbdHost, ...]:
    hosts = tuple(value)
    for host in hosts:
        if not isinstance(host, DrbdHost):
            raise SpecError("drbd.hosts", host, "must hold DrbdHost values")
    return hosts


def _connections(value: Iterable[DrbdConnection | Sequence[str]]) -> tuple[DrbdConnection, ...]:
    return tuple(c if isinstance(c, DrbdConnection) else DrbdConnection(hosts=c) for c in value)


def _sections(value: Iterable[DrbdSection]) -> tuple[DrbdSection, ...]:
    sections = tuple(value)
    for section in sections:
        if not isinstance(section, DrbdSection):
            raise SpecError("drbd.sections", section, "must hold DrbdSection values")
    return sections


@frozen
class DrbdResourceConfig:
    """A single-volume DRBD resource, as the lab writes it.

    Attributes:
        name: Resource name.
        minor: Device minor (``/dev/drbd<minor>``).
        disk: Backing block device (a loop device for the lab's single-node resource).
        hosts: The hosts, this machine among them; one for a single-node resource.
        meta_disk: ``internal`` (DRBD keeps its metadata at the end of ``disk``) or a device.
        device: The device path; ``None`` means ``/dev/drbd<minor>`` (given explicitly, that
            default is stored as ``None``).
        connections: DRBD 9 only: explicit host pairs. Empty means a full mesh between all
            hosts (a ``connection-mesh`` when there are at least two).
        sections: Option sections (``net``, ``disk``, ...), each name at most once.
    """

    name: str = field(validator=_name)
    minor: int = field(validator=_int_in(0, MAX_MINOR, "20-bit DRBD minors"))
    disk: str = field(validator=_path)
    hosts: tuple[DrbdHost, ...] = field(converter=_hosts)
    meta_disk: str = field(default="internal", validator=_path)
    device: str | None = field(default=None, validator=_path)
    connections: tuple[DrbdConnection, ...] = field(default=(), converter=_connections)
    sections: tuple[DrbdSection, ...] = field(default=(), converter=_sections)

    def __attrs_post_init__(self) -> None:
        if self.device == f"/dev/drbd{self.minor}":
            object.__setattr__(self, "device", None)  # the default, spelled out
        if not self.hosts:
            raise SpecError("drbd.hosts", (), "needs at least one host (this machine)")
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise SpecError("drbd.hosts", names, "host names must be unique")
        ids = [h.node_id for h in self.hosts if h.node_id is not None]
        if len(set(ids)) != len(ids):
            raise SpecError("drbd.hosts", ids, "node ids must be unique")
        if ids and len(ids) != len(self.hosts):
            raise SpecError("drbd.hosts", ids, "give a node_id to every host or to none")
        pairs: set[frozenset[str]] = set()
        for conn in self.connections:
            for host in conn.hosts:
                if host not in names:
                    raise SpecError("drbd.connections", conn.hosts, f"unknown host {host!r}")
            pair = frozenset(conn.hosts)
            if pair in pairs:
                raise SpecError("drbd.connections", conn.hosts, "connection given twice")
            pairs.add(pair)
        section_names = [s.name for s in self.sections]
        if len(set(section_names)) != len(section_names):
            raise SpecError("drbd.sections", section_names, "each section at most once")

    @property
    def device_path(self) -> str:
        """The DRBD device path."""
        return self.device if self.device is not None else f"/dev/drbd{self.minor}"

    def host(self, name: str) -> DrbdHost:
        """The host called ``name``.

        Raises:
            KeyError: No such host.
        """
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def peer_pairs(self) -> frozenset[frozenset[str]]:
        """The host pairs that replicate: the explicit connections, or the full mesh."""
        if self.connections:
            return frozenset(frozenset(c.hosts) for c in self.connections)
        names = [h.name for h in self.hosts]
        return frozenset(frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1 :])

    def section(self, name: str) -> DrbdSection | None:
        """The option section called ``name``, or ``None``."""
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def render(self, syntax: DrbdSyntax | str) -> str:
        """This resource as a ``.res`` file (see `render_drbd_res`).

        Raises:
            SpecError: The resource cannot be written in that syntax.
        """
        return render_drbd_res(self, syntax)


# ----------------------------------------------------------------------------------------
# Rendering


def _quote(arg: str) -> str:
    """An option value as a token: bare when drbdadm scans it as one word, else quoted."""
    if _STRING.fullmatch(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


# drbdadm's scanners (drbd-utils 9.22 user/v9 and user/v84 drbdadm_scanner.fl) turn these
# words into keyword tokens, and numbers, versions and IPv4 addresses into their own tokens
# (flex prefers the earlier rule on a tie), so a name spelled like one must be quoted.
_KEYWORDS = frozenset(
    (
        "_is_standalone",
        "_peer_node_id",
        "_remote_host",
        "_this_host",
        "address",
        "after",
        "after-resync-target",
        "al-extents",
        "al-updates",
        "allow-two-primaries",
        "alternate-link-address",
        "always-asbp",
        "ask",
        "become-primary-on",
        "before-resync-source",
        "before-resync-target",
        "bwlimit",
        "c-delay-target",
        "c-fill-target",
        "c-max-rate",
        "c-min-rate",
        "c-plan-ahead",
        "cmd-timeout-long",
        "cmd-timeout-medium",
        "cmd-timeout-short",
        "common",
        "compression",
        "congestion-extents",
        "congestion-fill",
        "connect-int",
        "connection",
        "connection-mesh",
        "cpu-mask",
        "cram-hmac-alg",
        "csums-after-crash-only",
        "csums-alg",
        "data-integrity-alg",
        "degr-wfc-timeout",
        "delay-probe-interval",
        "delay-probe-volume",
        "device",
        "dialog-refresh",
        "disable-ip-verification",
        "disable-write-same",
        "discard-my-data",
        "discard-zeroes-if-aligned",
        "disk",
        "disk-barrier",
        "disk-drain",
        "disk-flushes",
        "disk-timeout",
        "fence-peer",
        "fencing",
        "flexible-meta-disk",
        "floating",
        "global",
        "handlers",
        "hold-off-threshold",
        "host",
        "hosts",
        "ignore-on",
        "include",
        "initial-split-brain",
        "inside",
        "ipv4",
        "ipv6",
        "ko-count",
        "local-io-error",
        "max-bio-bvecs",
        "max-buffers",
        "max-epoch-size",
        "md-flushes",
        "memlimit",
        "meta-disk",
        "minor",
        "minor-count",
        "net",
        "no",
        "no-disk-barrier",
        "no-disk-drain",
        "no-disk-flushes",
        "no-md-flushes",
        "no-tcp-cork",
        "node-id",
        "on",
        "on-congestion",
        "on-io-error",
        "on-no-data-accessible",
        "options",
        "out-of-sync",
        "outdate-peer",
        "outdated-wfc-timeout",
        "outside",
        "path",
        "ping-int",
        "ping-timeout",
        "plugin",
        "port",
        "pri-lost",
        "pri-lost-after-sb",
        "pri-on-incon-degr",
        "protocol",
        "proxy",
        "rate",
        "rcvbuf-size",
        "read-balancing",
        "read-loops",
        "require-drbd-module-version-eq",
        "require-drbd-module-version-ge",
        "require-drbd-module-version-gt",
        "require-drbd-module-version-le",
        "require-drbd-module-version-lt",
        "require-drbd-module-version-ne",
        "resource",
        "resync-after",
        "resync-rate",
        "rr-conflict",
        "rs-discard-granularity",
        "sci",
        "sdp",
        "shared-secret",
        "size",
        "skip",
        "sndbuf-size",
        "socket-check-timeout",
        "split-brain",
        "ssocks",
        "stacked-on-top-of",
        "stacked-timeouts",
        "startup",
        "syncer",
        "tcp-cork",
        "template-file",
        "throttle-threshold",
        "timeout",
        "udev-always-use-vnr",
        "unfence-peer",
        "unplug-watermark",
        "usage-count",
        "use-bmbv",
        "use-rle",
        "verify-alg",
        "via",
        "volume",
        "wait-after-sb",
        "wfc-timeout",
        "yes",
    )
)
_OTHER_TOKENS = re.compile(
    r"[0-9]{1,8}[MKGs]?|[0-9]+\.[0-9]+\.[0-9]+|(?:[0-9]{1,3}\.){3}[0-9]{1,3}|after-sb-[012]pri"
)


def _word(name: str) -> str:
    """A name or path as a token drbdadm reads back as that string."""
    if _STRING.fullmatch(name) and name not in _KEYWORDS and not _OTHER_TOKENS.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _address_text(host: DrbdHost) -> str:
    if isinstance(host.address, ipaddress.IPv6Address):
        return f"ipv6 [{host.address}]:{host.port}"
    return f"{host.address}:{host.port}"


def render_drbd_res(res: DrbdResourceConfig, syntax: DrbdSyntax | str) -> str:
    """Render a resource file for ``drbdadm`` (DRBD 9) or ``drbdadm-84`` (DRBD 8.4).

    For 8.4, node ids are not written (8.4 has none); for DRBD 9, hosts without a node id
    are numbered in order from 0.

    Args:
        res: The resource.
        syntax: ``DrbdSyntax.V84`` or ``DrbdSyntax.V9`` (or ``"8.4"``/``"9"``).

    Returns:
        The file's text.

    Raises:
        SpecError: The resource cannot be written in that syntax (8.4: more than two hosts,
            or explicit connections).
    """
    try:
        dialect = DrbdSyntax(syntax)
    except ValueError:
        raise SpecError("drbd.syntax", syntax, "must be '8.4' or '9'") from None
    if dialect is DrbdSyntax.V84:
        if len(res.hosts) > 2:
            raise SpecError(
                "drbd.hosts", [h.name for h in res.hosts], "DRBD 8.4 allows at most two hosts"
            )
        if res.connections:
            raise SpecError("drbd.connections", res.connections, "DRBD 8.4 has no connections")
    lines = [f"resource {_word(res.name)} {{"]
    lines.append(f"    device {_word(res.device_path)} minor {res.minor};")
    lines.append(f"    disk {_word(res.disk)};")
    lines.append(f"    meta-disk {_word(res.meta_disk)};")
    for section in res.sections:
        lines.append(f"    {section.name} {{")
        for key, args in section.options:
            words = " ".join([key, *(_quote(a) for a in args)])
            lines.append(f"        {words};")
        lines.append("    }")
    for index, host in enumerate(res.hosts):
        lines.append(f"    on {_word(host.name)} {{")
        lines.append(f"        address {_address_text(host)};")
        if dialect is DrbdSyntax.V9:
            node_id = host.node_id if host.node_id is not None else index
            lines.append(f"        node-id {node_id};")
        lines.append("    }")
    if dialect is DrbdSyntax.V9:
        if res.connections:
            for conn in res.connections:
                lines.append("    connection {")
                lines.extend(f"        host {_word(name)};" for name in conn.hosts)
                lines.append("    }")
        elif len(res.hosts) > 1:
            lines.append("    connection-mesh {")
            lines.append("        hosts " + " ".join(_word(h.name) for h in res.hosts) + ";")
            lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# Resource configuration: parsing

_WHAT_RES = "DRBD resource file"


@frozen
class _Stmt:
    words: tuple[str, ...]
    block: tuple[_Stmt, ...] | None
    line: int


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """Yield ``(token, line, quoted)``; punctuation ``{ } ;`` are tokens of their own."""
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch in " \t\r\f\v":
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "{};":
            yield ch, line, False
            i += 1
        elif ch == '"':
            j, out = i + 1, []
            while True:
                if j >= n or text[j] == "\n":
                    raise ParseError(
                        _WHAT_RES, "unterminated quoted string", line=line, text=text[i:j][:60]
                    )
                c = text[j]
                if c == "\\" and j + 1 < n and text[j + 1] != "\n":
                    out.append(text[j + 1])
                    j += 2
                    continue
                if c == '"':
                    break
                out.append(c)
                j += 1
            yield "".join(out), line, True
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\f\v\n{};"#':
                j += 1
            yield text[i:j], line, False
            i = j


def _statements(text: str) -> tuple[_Stmt, ...]:
    require_text(text, _WHAT_RES)
    stack: list[tuple[list[_Stmt], tuple[str, ...], int]] = []
    current: list[_Stmt] = []
    words: list[str] = []
    first_line = 0
    for piece, line, quoted in _tokens(text):
        if quoted or piece not in "{};":
            if not words:
                first_line = line
            words.append(piece)
        elif piece == ";":
            if not words:
                raise ParseError(_WHAT_RES, "';' without a statement", line=line)
            current.append(_Stmt(tuple(words), None, first_line))
            words = []
        elif piece == "{":
            if not words:
                raise ParseError(_WHAT_RES, "'{' without a section name", line=line)
            stack.append((current, tuple(words), first_line))
            current, words = [], []
        else:  # "}"
            if words:
                raise ParseError(
                    _WHAT_RES, f"missing ';' after {' '.join(words)!r}", line=first_line
                )
            if not stack:
                raise ParseError(_WHAT_RES, "'}' without a section to close", line=line)
            parent, head, head_line = stack.pop()
            parent.append(_Stmt(head, tuple(current), head_line))
            current = parent
    if words:
        raise ParseError(_WHAT_RES, f"missing ';' after {' '.join(words)!r}", line=first_line)
    if stack:
        raise ParseError(
            _WHAT_RES, f"section {' '.join(stack[-1][1])!r} is not closed", line=stack[-1][2]
        )
    return tuple(current)


def _fail(stmt: _Stmt, reason: str) -> ParseError:
    return ParseError(_WHAT_RES, reason, line=stmt.line, text=" ".join(stmt.words))


def _int_word(stmt: _Stmt, word: str, what: str) -> int:
    if not _DIGITS.fullmatch(word):
        raise _fail(stmt, f"{what} must be a number, got {word!r}")
    return int(word)


def _parse_address(stmt: _Stmt) -> tuple[str, int]:
    words = stmt.words[1:]
    if len(words) == 2 and words[0] in ("ipv4", "ipv6"):
        family, text = words
    elif len(words) == 1:
        family, text = "", words[0]
    else:
        raise _fail(stmt, "expected 'address [ipv4|ipv6] ADDRESS:PORT'")
    match = re.fullmatch(r"\[([0-9A-Fa-f:.%a-z]+)\]:(\d+)|([0-9.]+):(\d+)", text)
    if match is None:
        raise _fail(stmt, "expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)")
    if match.group(1) is not None:
        if family == "ipv4":
            raise _fail(stmt, "ipv4 address in IPv6 brackets")
        return match.group(1), int(match.group(2))
    if family == "ipv6":
        raise _fail(stmt, "ipv6 address must be in brackets")
    return match.group(3), int(match.group(4))


class _Volume:
    """Volume keys seen at one level (resource, host or volume section)."""

    def __init__(self) -> None:
        self.device: str | None = None
        self.minor: int | None = None
        self.disk: str | None = None
        self.meta_disk: str | None = None
        self.line = 0

    def take(self, stmt: _Stmt) -> bool:
        key = stmt.words[0]
        if key == "device":
            rest = list(stmt.words[1:])
            if len(rest) >= 2 and rest[-2] == "minor":
                self.minor = _int_word(stmt, rest[-1], "minor")
                rest = rest[:-2]
            if len(rest) > 1:
                raise _fail(stmt, "expected 'device [PATH] [minor N]'")
            if rest:
                self.device = rest[0]
                if self.minor is None:
                    found = re.fullmatch(r"/dev/drbd(\d+)", rest[0])
                    if found is None:
                        raise _fail(stmt, "device without 'minor N' must be /dev/drbdN")
                    self.minor = int(found.group(1))
            if self.minor is None:
                raise _fail(stmt, "device needs a path or a minor")
        elif key in ("meta-disk", "flexible-meta-disk"):
            if len(stmt.words) != 2:
                raise _fail(
                    stmt,
                    "expected 'meta-disk internal|DEVICE' (indexed meta-disks are not supported)",
                )
            self.meta_disk = stmt.words[1]
        elif key == "disk" and stmt.block is None:
            if len(stmt.words) != 2:
                raise _fail(stmt, "expected 'disk DEVICE'")
            self.disk = stmt.words[1]
        else:
            return False
        self.line = self.line or stmt.line
        return True

    def over(self, base: _Volume) -> _Volume:
        merged = _Volume()
        for name in ("device", "minor", "disk", "meta_disk"):
            mine = getattr(self, name)
            setattr(merged, name, mine if mine is not None else getattr(base, name))
        merged.line = self.line or base.line
        return merged

    def key(self) -> tuple[str | None, int | None, str | None, str | None]:
        return (self.device, self.minor, self.disk, self.meta_disk)


def _section(stmt: _Stmt) -> DrbdSection:
    options = []
    assert stmt.block is not None
    for sub in stmt.block:
        if sub.block is not None:
            raise _fail(sub, f"nested sections in {stmt.words[0]!r} are not supported")
        options.append((sub.words[0], sub.words[1:]))
    try:
        return DrbdSection(name=stmt.words[0], options=options)
    except SpecError as exc:
        raise _fail(stmt, exc.message) from exc


def _resource(stmt: _Stmt) -> DrbdResourceConfig:
    if len(stmt.words) != 2 or stmt.block is None:
        raise _fail(stmt, "expected 'resource NAME { ... }'")
    name = stmt.words[1]
    base = _Volume()
    volumes: list[tuple[_Stmt, _Volume]] = []
    host_stmts: list[tuple[_Stmt, _Volume, dict[str, Any]]] = []
    sections: list[DrbdSection] = []
    mesh: tuple[str, ...] | None = None
    pairs: list[tuple[str, str]] = []
    for sub in stmt.block:
        key = sub.words[0]
        if sub.block is None and base.take(sub):
            continue
        if key == "on" and sub.block is not None:
            if len(sub.words) != 2:
                raise _fail(sub, "expected 'on HOST { ... }' (one host name)")
            vol = _Volume()
            info: dict[str, Any] = {}
            for item in sub.block:
                if item.block is None and vol.take(item):
                    continue
                if item.words[0] == "address" and item.block is None:
                    info["address"] = _parse_address(item)
                elif item.words[0] == "node-id" and item.block is None and len(item.words) == 2:
                    info["node_id"] = _int_word(item, item.words[1], "node-id")
                elif item.words[0] == "volume" and item.block is not None:
                    inner = _Volume()
                    for v in item.block:
                        if not (v.block is None and inner.take(v)):
                            raise _fail(v, f"unsupported statement {v.words[0]!r} in volume")
                    vol = inner.over(vol)
                else:
                    raise _fail(item, f"unsupported statement {item.words[0]!r} in 'on' section")
            host_stmts.append((sub, vol, info))
        elif key == "volume" and sub.block is not None:
            vol = _Volume()
            for v in sub.block:
                if not (v.block is None and vol.take(v)):
                    raise _fail(v, f"unsupported statement {v.words[0]!r} in volume")
            volumes.append((sub, vol))
        elif key in _SECTIONS and sub.block is not None and len(sub.words) == 1:
            if any(s.name == key for s in sections):
                raise _fail(sub, f"section {key!r} given twice")
            sections.append(_section(sub))
        elif key == "connection-mesh" and sub.block is not None:
            for item in sub.block:
                if item.words[0] != "hosts" or item.block is not None or len(item.words) < 3:
                    raise _fail(item, "expected 'hosts A B ...;' in connection-mesh")
                mesh = item.words[1:]
        elif key == "connection" and sub.block is not None:
            names = []
            for item in sub.block:
                if item.words[0] == "host" and item.block is None and len(item.words) >= 2:
                    names.append(item.words[1])
                else:
                    raise _fail(item, f"unsupported statement {item.words[0]!r} in connection")
            if len(names) != 2:
                raise _fail(sub, "a connection names exactly two hosts")
            pairs.append((names[0], names[1]))
        else:
            raise _fail(sub, f"unsupported statement {key!r} in resource")
    if len(volumes) > 1:
        raise _fail(volumes[1][0], "several volumes are not supported")
    if volumes:
        base = volumes[0][1].over(base)
    if not host_stmts:
        raise _fail(stmt, f"resource {name!r} has no 'on HOST' section")
    effective = [vol.over(base) for _, vol, _ in host_stmts]
    first = effective[0]
    for (host_stmt, _, _), vol in zip(host_stmts, effective, strict=True):
        if vol.key() != first.key():
            raise _fail(
                host_stmt, "hosts with different device, disk or meta-disk are not supported"
            )
    if first.minor is None:
        raise _fail(stmt, f"resource {name!r} has no 'device ... minor N'")
    if first.disk is None:
        raise _fail(stmt, f"resource {name!r} has no 'disk'")
    hosts = []
    for host_stmt, _, info in host_stmts:
        if "address" not in info:
            raise _fail(host_stmt, f"host {host_stmt.words[1]!r} has no address")
        address, port = info["address"]
        try:
            hosts.append(
                DrbdHost(
                    name=host_stmt.words[1],
                    address=address,
                    port=port,
                    node_id=info.get("node_id"),
                )
            )
        except SpecError as exc:
            raise _fail(host_stmt, exc.message) from exc
    host_names = [h.name for h in hosts]
    connections: list[tuple[str, str]] = list(pairs)
    if mesh is not None and (set(mesh) != set(host_names) or len(mesh) != len(host_names)):
        connections.extend((a, b) for i, a in enumerate(mesh) for b in mesh[i + 1 :])
    device = first.device
    if device == f"/dev/drbd{first.minor}":
        device = None
    try:
        return DrbdResourceConfig(
            name=name,
            minor=first.minor,
            disk=first.disk,
            hosts=hosts,
            meta_disk=first.meta_disk or "internal",
            device=device,
            connections=connections,
            sections=sections,
        )
    except SpecError as exc:
        raise _fail(stmt, exc.message) from exc


def parse_drbd_res_all(text: str) -> tuple[DrbdResourceConfig, ...]:
    """Parse every resource of a resource file or of ``drbdadm dump`` output.

    A ``global`` section is accepted and ignored (it holds host-wide settings such as
    ``disable-ip-verification``); ``common`` sections and ``include`` are refused, since their
    content would change the resources.

    Args:
        text: The file's text or the dump.

    Returns:
        The resources in order.

    Raises:
        ParseError: Broken syntax, or a construct outside the single-volume shape this
            module models (named by line).
    """
    resources = []
    for stmt in _statements(text):
        key = stmt.words[0]
        if key == "global" and stmt.block is not None:
            continue
        if key == "resource":
            resources.append(_resource(stmt))
        else:
            raise _fail(stmt, f"unsupported top-level statement {key!r} (expected resource)")
    return tuple(resources)


def parse_drbd_res(text: str) -> DrbdResourceConfig:
    """Parse a resource file (or ``drbdadm dump`` output) holding exactly one resource.

    Args:
        text: The file's text or the dump.

    Returns:
        The resource.

    Raises:
        ParseError: Broken syntax, no or several resources, or an unsupported construct.
    """
    resources = parse_drbd_res_all(text)
    if len(resources) != 1:
        raise ParseError(_WHAT_RES, f"expected one resource, found {len(resources)}")
    return resources[0]
