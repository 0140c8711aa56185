"""Output of iproute2's JSON mode: ``ip -j link`` and ``ip -j -4 addr``.

Used to find a node's interconnect interface by its MAC address (a VM's NIC names depend on
PCI slots; its MAC is the lab's choice) and to check that a machine has its interconnect
address.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from attrs import frozen

from ocfs2lab.errors import ParseError
from ocfs2lab.formats._text import require_text


@frozen
class Link:
    """One network interface.

    Attributes:
        name: Interface name (``enp0s4``).
        mac: Its MAC address, lower case (``""`` for interfaces without one).
        up: The administrative state is up (``UP`` flag).
        addresses: Its IPv4 addresses with prefix lengths (from ``ip -j -4 addr``).
    """

    name: str
    mac: str
    up: bool
    addresses: tuple[ipaddress.IPv4Interface, ...] = ()


def _entries(text: str, what: str) -> list[dict[str, Any]]:
    text = require_text(text, what)
    try:
        data = json.loads(text or "[]")
    except ValueError as err:
        raise ParseError(what, f"not JSON: {err}", text=text[:200]) from err
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ParseError(what, "expected a JSON list of interface objects", text=text[:200])
    return data


def _name(entry: dict[str, Any], what: str) -> str:
    name = entry.get("ifname")
    if not isinstance(name, str) or not name:
        raise ParseError(what, f"an interface without ifname: {entry!r}"[:200])
    return name


def parse_links(text: str) -> list[Link]:
    """Interfaces of ``ip -j link``.

    Raises:
        ParseError: Not the JSON iproute2 prints.
    """
    out = []
    for entry in _entries(text, "ip -j link"):
        flags = entry.get("flags") or []
        mac = entry.get("address") if entry.get("link_type") == "ether" else ""
        out.append(
            Link(_name(entry, "ip -j link"), str(mac or "").lower(), "UP" in flags, addresses=())
        )
    return out


def parse_addresses(text: str) -> dict[str, tuple[ipaddress.IPv4Interface, ...]]:
    """IPv4 addresses per interface, from ``ip -j -4 addr``.

    Raises:
        ParseError: Not the JSON iproute2 prints, or a malformed address.
    """
    out: dict[str, tuple[ipaddress.IPv4Interface, ...]] = {}
    for entry in _entries(text, "ip -j -4 addr"):
        name = _name(entry, "ip -j -4 addr")
        found = []
        for info in entry.get("addr_info") or []:
            if info.get("family") != "inet":
                continue
            try:
                found.append(ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}"))
            except (KeyError, ValueError) as err:
                raise ParseError("ip -j -4 addr", f"bad address {info!r}: {err}") from err
        out[name] = tuple(found)
    return out


def link_by_mac(links: list[Link], mac: str) -> Link | None:
    """The interface whose MAC address is ``mac`` (case ignored), or ``None``."""
    wanted = mac.lower()
    return next((link for link in links if link.mac == wanted), None)


def holder_of(
    addresses: dict[str, tuple[ipaddress.IPv4Interface, ...]], address: ipaddress.IPv4Address
) -> str | None:
    """The interface that has ``address``, or ``None``."""
    for name, found in addresses.items():
        if any(a.ip == address for a in found):
            return name
    return None
