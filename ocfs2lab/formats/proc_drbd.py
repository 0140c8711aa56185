"""``/proc/drbd``: the loaded DRBD module's version and, for 8.4, its devices.

Parsed after ``drivers/block/drbd/drbd_proc.c`` (Linux 6.1/6.12, DRBD 8.4.11: version line,
build tag line, then per minor ``%2d: cs:%s ro:%s/%s ds:%s/%s %c %c%c%c%c%c%c`` and a
counter line) and DRBD 9's ``drbd_proc.c`` (version, build tag and a ``Transports`` line; no
devices, except 8.4-compat devices in 9.3).
"""

from __future__ import annotations

import re
from typing import Any

from attrs import frozen

from ocfs2lab.errors import ParseError
from ocfs2lab.formats._text import require_text
from ocfs2lab.formats.drbd_res import DrbdSyntax

__all__ = [
    "DrbdCounters",
    "DrbdProcDevice",
    "DrbdProcInfo",
    "DrbdSyncProgress",
    "parse_proc_drbd",
]

_WHAT_PROC = "/proc/drbd"
_VERSION = re.compile(
    r"version: (?P<text>(?P<num>\d+(?:\.\d+)*)\S*) "
    r"\(api:(?P<api>\d+)/proto:(?P<lo>\d+)-(?P<hi>\d+)\)(?P<rest>.*)"
)
_DEVICE = re.compile(
    r" *(?P<minor>\d+): cs:(?P<cs>\S+) ro:(?P<ro>\S+)/(?P<pro>\S+) ds:(?P<ds>\S+)/(?P<pds>\S+)"
    r" (?P<proto>[A-C ]) (?P<flags>\S{6})\s*"
)
_UNCONFIGURED = re.compile(r" *(?P<minor>\d+): cs:Unconfigured\s*")
_COUNTERS = re.compile(
    r"\s+ns:(?P<ns>\d+) nr:(?P<nr>\d+) dw:(?P<dw>\d+) dr:(?P<dr>\d+) al:(?P<al>\d+)"
    r" bm:(?P<bm>\d+) lo:(?P<lo>-?\d+) pe:(?P<pe>-?\d+) ua:(?P<ua>-?\d+) ap:(?P<ap>-?\d+)"
    r" ep:(?P<ep>\d+) wo:(?P<wo>\S)(?: oos:(?P<oos>\d+))?\s*"
)
_SYNC_BAR = re.compile(
    r"\s+\[[=>.]*\] (?P<kind>sync'ed|verified):\s*(?P<pct>\d+\.\d)% "
    r"\((?P<left>\d+)/(?P<total>\d+)\)(?P<unit>[KM])\s*"
)
_SYNC_SPEED = re.compile(
    r"\s+finish: (?P<h>\d+):(?P<m>\d+):(?P<s>\d+) speed: (?P<speed>[\d,]+) .*K/sec.*"
)
_TRANSPORTS = re.compile(r"Transports \(api:(?P<api>\d+)\):(?P<list>.*)")


@frozen
class DrbdCounters:
    """The counter line of a device (``drbd_proc.c``; kibibytes unless said otherwise).

    Attributes:
        ns: Sent over the network.
        nr: Received over the network.
        dw: Written to the local disk.
        dr: Read from the local disk.
        al: Activity-log updates (count).
        bm: Bitmap updates (count).
        lo: Open local requests.
        pe: Pending requests (waiting for the peer).
        ua: Unacknowledged requests.
        ap: Application requests not yet completed.
        ep: Epochs in flight.
        wo: Write ordering: ``f`` flush, ``d`` drain, ``n`` none.
        oos: Known out-of-sync kibibytes.
    """

    ns: int
    nr: int
    dw: int
    dr: int
    al: int
    bm: int
    lo: int
    pe: int
    ua: int
    ap: int
    ep: int
    wo: str
    oos: int | None = None


@frozen
class DrbdSyncProgress:
    """A resync or online-verify progress block.

    Attributes:
        verify: ``True`` for online verify, ``False`` for resync.
        percent: Percent done (one decimal, as printed).
        left_kib: Kibibytes still to go.
        total_kib: Kibibytes in all.
        finish_s: Estimated seconds to go, when printed.
        speed_kib_s: Recent speed in KiB/s, when printed.
    """

    verify: bool
    percent: float
    left_kib: int
    total_kib: int
    finish_s: int | None = None
    speed_kib_s: int | None = None


@frozen
class DrbdProcDevice:
    """One minor in ``/proc/drbd``.

    Attributes:
        minor: Device minor.
        cs: Connection state (``StandAlone``, ``Connected``, ... or ``Unconfigured``).
        role: Local role (``Primary``/``Secondary``/``Unknown``); ``None`` when unconfigured.
        peer_role: Peer role.
        disk: Local disk state (``UpToDate``, ``Diskless``, ...).
        peer_disk: Peer disk state (``DUnknown`` without a peer).
        protocol: Replication protocol ``A``/``B``/``C``, ``None`` without a net config.
        flags: The six I/O flag characters (``r-----``: running, ``s`` suspended, ...).
        counters: The counter line, when printed.
        sync: Resync/verify progress, when a sync runs.
        details: Further indented lines (activity-log statistics), verbatim.
    """

    minor: int
    cs: str
    role: str | None = None
    peer_role: str | None = None
    disk: str | None = None
    peer_disk: str | None = None
    protocol: str | None = None
    flags: str = ""
    counters: DrbdCounters | None = None
    sync: DrbdSyncProgress | None = None
    details: tuple[str, ...] = ()

    @property
    def unconfigured(self) -> bool:
        """The minor exists but is not configured."""
        return self.cs == "Unconfigured"

    @property
    def suspended(self) -> bool:
        """I/O is suspended (first flag ``s``)."""
        return self.flags[:1] == "s"


@frozen
class DrbdProcInfo:
    """What ``/proc/drbd`` says.

    Attributes:
        version: Module version as numbers (``(8, 4, 11)``).
        version_text: Version as printed (may carry a suffix such as ``-rc.1``).
        api: Netlink API version (1 for 8.4, 2 for DRBD 9).
        proto: Protocol versions supported, ``(min, max)``.
        build: The build-tag line (``srcversion: ...`` for the in-tree module, ``GIT-hash:
            ...`` for DRBD 9).
        transports: DRBD 9 transports loaded, ``(name, version)``.
        transport_api: DRBD 9 transport API version.
        compat84: DRBD 9.3+ with 8.4 compatibility.
        devices: Devices (8.4 and 8.4-compat only; DRBD 9 lists none here).
    """

    version: tuple[int, ...]
    version_text: str
    api: int
    proto: tuple[int, int]
    build: str = ""
    transports: tuple[tuple[str, str], ...] = ()
    transport_api: int | None = None
    compat84: bool = False
    devices: tuple[DrbdProcDevice, ...] = ()

    @property
    def syntax(self) -> DrbdSyntax:
        """The configuration dialect for this module.

        Raises:
            SpecError: Neither 8.4 nor 9.x.
        """
        return DrbdSyntax.for_version(self.version)

    def device(self, minor: int) -> DrbdProcDevice | None:
        """The device with that minor, or ``None``."""
        for dev in self.devices:
            if dev.minor == minor:
                return dev
        return None


def _speed(text: str) -> int:
    return int(text.replace(",", ""))


def parse_proc_drbd(text: str) -> DrbdProcInfo:
    """Parse the contents of ``/proc/drbd`` (DRBD 8.4 or 9.x).

    Args:
        text: The file's contents.

    Returns:
        The module version and, for 8.4, the devices.

    Raises:
        ParseError: No version line, or a line of an unknown shape (named by number).
    """
    require_text(text, _WHAT_PROC)
    lines = text.split("\n")
    first = lines[0].rstrip("\r") if lines else ""
    head = _VERSION.fullmatch(first)
    if head is None:
        raise ParseError(
            _WHAT_PROC,
            "first line must be 'version: X.Y.Z (api:N/proto:A-B)'",
            line=1,
            text=first,
        )
    rest = head.group("rest").strip()
    if rest not in ("", "(compat 8.4)"):
        raise ParseError(_WHAT_PROC, "unexpected text after the version", line=1, text=first)
    build = lines[1].rstrip() if len(lines) > 1 else ""
    transports: list[tuple[str, str]] = []
    transport_api: int | None = None
    devices: list[DrbdProcDevice] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None:
            devices.append(DrbdProcDevice(**current))

    for index in range(2, len(lines)):
        lineno = index + 1
        line = lines[index].rstrip("\r")
        if line.strip() == "":
            continue
        if m := _TRANSPORTS.fullmatch(line):
            transport_api = int(m.group("api"))
            for name, version in re.findall(r" (\S+) \(([^)]*)\)", m.group("list")):
                transports.append((name, version))
            continue
        if m := _UNCONFIGURED.fullmatch(line):
            close()
            current = {"minor": int(m.group("minor")), "cs": "Unconfigured"}
            continue
        if m := _DEVICE.fullmatch(line):
            close()
            proto = m.group("proto").strip() or None
            current = {
                "minor": int(m.group("minor")),
                "cs": m.group("cs"),
                "role": m.group("ro"),
                "peer_role": m.group("pro"),
                "disk": m.group("ds"),
                "peer_disk": m.group("pds"),
                "protocol": proto,
                "flags": m.group("flags"),
            }
            continue
        if current is None or not line[:1].isspace():
            raise ParseError(
                _WHAT_PROC, "expected a device line ' N: cs:...'", line=lineno, text=line
            )
        if m := _COUNTERS.fullmatch(line):
            values: dict[str, Any] = {
                k: int(v) for k, v in m.groupdict().items() if k not in ("wo", "oos")
            }
            oos = m.group("oos")
            current["counters"] = DrbdCounters(
                wo=m.group("wo"), oos=None if oos is None else int(oos), **values
            )
        elif m := _SYNC_BAR.fullmatch(line):
            scale = 1024 if m.group("unit") == "M" else 1
            current["sync"] = DrbdSyncProgress(
                verify=m.group("kind") == "verified",
                percent=float(m.group("pct")),
                left_kib=int(m.group("left")) * scale,
                total_kib=int(m.group("total")) * scale,
            )
        elif (m := _SYNC_SPEED.fullmatch(line)) and current.get("sync") is not None:
            sync: DrbdSyncProgress = current["sync"]
            current["sync"] = DrbdSyncProgress(
                verify=sync.verify,
                percent=sync.percent,
                left_kib=sync.left_kib,
                total_kib=sync.total_kib,
                finish_s=int(m.group("h")) * 3600 + int(m.group("m")) * 60 + int(m.group("s")),
                speed_kib_s=_speed(m.group("speed")),
            )
        else:
            current["details"] = (*current.get("details", ()), line.strip())
    close()
    numbers = tuple(int(p) for p in head.group("num").split("."))
    return DrbdProcInfo(
        version=numbers,
        version_text=head.group("text"),
        api=int(head.group("api")),
        proto=(int(head.group("lo")), int(head.group("hi"))),
        build=build,
        transports=tuple(transports),
        transport_api=transport_api,
        compat84=rest == "(compat 8.4)",
        devices=tuple(devices),
    )
