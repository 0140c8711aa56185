"""iproute2 JSON output, captured on this project's machines."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ocfs2lab.errors import ParseError
from ocfs2lab.formats.iproute import holder_of, link_by_mac, parse_addresses, parse_links

DATA = Path(__file__).resolve().parents[2] / "data" / "iproute"


def test_links_of_a_lab_vm_node_find_the_interconnect_by_mac() -> None:
    links = parse_links((DATA / "vm-node-ip-j-link.json").read_text())
    assert links[0].name == "lo"
    interconnect = link_by_mac(links, "52:54:00:77:00:01")
    assert interconnect is not None and interconnect.name == "enp0s5"
    ssh = link_by_mac(links, "52:54:00:6C:61:62")  # case does not matter
    assert ssh is not None and ssh.up and ssh.name == "enp0s2"
    assert link_by_mac(links, "52:54:00:77:00:09") is None


def test_addresses_of_a_lab_vm_node() -> None:
    addrs = parse_addresses((DATA / "vm-node-ip-j-4-addr.json").read_text())
    assert holder_of(addrs, ipaddress.IPv4Address("192.168.77.11")) == "enp0s5"
    assert holder_of(addrs, ipaddress.IPv4Address("127.0.0.1")) == "lo"
    assert holder_of(addrs, ipaddress.IPv4Address("192.168.77.99")) is None
    slirp = [
        a for found in addrs.values() for a in found if a.ip in ipaddress.ip_network("10.0.2.0/24")
    ]
    assert slirp and slirp[0].network.prefixlen == 24


def test_host_captures_parse() -> None:
    links = parse_links((DATA / "host-ip-j-link.json").read_text())
    assert any(link.name == "lo" and link.mac == "" for link in links)
    addrs = parse_addresses((DATA / "host-ip-j-4-addr.json").read_text())
    assert ipaddress.IPv4Interface("127.0.0.1/8") in addrs["lo"]


@pytest.mark.parametrize(
    "text",
    ["not json", '{"ifname": "lo"}', "[1, 2]", '[{"flags": []}]'],
)
def test_junk_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_links(text)
    with pytest.raises(ParseError):
        parse_addresses(text)


def test_a_bad_address_is_a_parse_error() -> None:
    bad = (
        '[{"ifname": "x", "addr_info": [{"family": "inet", "local": "300.1.1.1", "prefixlen": 8}]}]'
    )
    with pytest.raises(ParseError):
        parse_addresses(bad)
    assert parse_links("") == [] and parse_addresses("") == {}
