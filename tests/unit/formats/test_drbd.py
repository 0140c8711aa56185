"""DRBD resource files, /proc/drbd and drbdadm status."""

from __future__ import annotations

import ipaddress

import pytest

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats.drbd_res import (
    DrbdConnection,
    DrbdHost,
    DrbdResourceConfig,
    DrbdSection,
    DrbdSyntax,
    parse_drbd_res,
    parse_drbd_res_all,
    render_drbd_res,
)
from ocfs2lab.formats.drbd_status import parse_drbd_status
from ocfs2lab.formats.proc_drbd import parse_proc_drbd

from .conftest import DATA
from .drbd_cases import CASES, assert_same_as_dump, expected_hosts

DRBD = DATA / "drbd-utils"
PROC = DATA / "kernel" / "proc-drbd"


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_the_file_drbdadm_accepted(case: str) -> None:
    res, syntax, _ = CASES[case]
    assert render_drbd_res(res, syntax) == (DRBD / f"{case}.res").read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_of_rendered_file(case: str) -> None:
    res, syntax, _ = CASES[case]
    parsed = parse_drbd_res((DRBD / f"{case}.res").read_text())
    assert list(parsed.hosts) == expected_hosts(res, syntax)
    assert parsed == DrbdResourceConfig(
        name=res.name,
        minor=res.minor,
        disk=res.disk,
        hosts=expected_hosts(res, syntax),
        meta_disk=res.meta_disk,
        device=res.device,
        connections=res.connections,
        sections=res.sections,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_of_real_drbdadm_dump(case: str) -> None:
    res, syntax, _ = CASES[case]
    dumped = parse_drbd_res((DRBD / f"{case}.dump").read_text())
    assert_same_as_dump(dumped, res, syntax)


def test_single_node_resource_shape() -> None:
    res = CASES["single-node.v9"][0]
    assert res.device_path == "/dev/drbd0"
    assert res.peer_pairs() == frozenset()
    assert res.host("node1").address == ipaddress.IPv4Address("127.0.0.1")
    with pytest.raises(KeyError):
        res.host("other")
    assert res.render("8.4") == render_drbd_res(res, DrbdSyntax.V84)
    assert "node-id" not in res.render("8.4")


def test_mesh_and_sections() -> None:
    res = CASES["three-node-mesh.v9"][0]
    text = res.render(DrbdSyntax.V9)
    assert "    connection-mesh {\n        hosts alpha beta gamma;\n    }\n" in text
    assert "        address ipv6 [fd00::3]:7790;\n" in text
    net = res.section("net")
    assert net is not None and net.get("protocol") == ("C",)
    assert net.get("nothing") is None
    assert res.section("startup") is None
    assert len(res.peer_pairs()) == 3


def test_explicit_default_device_is_normalised() -> None:
    res = DrbdResourceConfig("r", 3, "/dev/loop3", [DrbdHost("h", "10.0.0.1")], device="/dev/drbd3")
    assert res.device is None


def test_quoted_option_values_round_trip() -> None:
    res = DrbdResourceConfig(
        "r",
        0,
        "/dev/loop0",
        [DrbdHost("h", "10.0.0.1", node_id=0)],
        sections=[
            DrbdSection("handlers", [("fence-peer", ('/usr/lib/drbd/x.sh "a b" #1',))]),
            DrbdSection("options", [("auto-promote", ())]),
        ],
    )
    text = res.render("9")
    assert 'fence-peer "/usr/lib/drbd/x.sh \\"a b\\" #1";' in text
    assert "        auto-promote;\n" in text
    assert parse_drbd_res(text) == res


@pytest.mark.parametrize(
    ("res", "syntax", "words"),
    [
        (CASES["three-node-mesh.v9"][0], "8.4", "at most two hosts"),
        (
            DrbdResourceConfig(
                "r",
                0,
                "/dev/loop0",
                [DrbdHost("a", "10.0.0.1"), DrbdHost("b", "10.0.0.2")],
                connections=[("a", "b")],
            ),
            "8.4",
            "no connections",
        ),
        (CASES["single-node.v9"][0], "10", "'8.4' or '9'"),
    ],
)
def test_render_refuses(res: DrbdResourceConfig, syntax: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        render_drbd_res(res, syntax)


def _res(**kw: object) -> DrbdResourceConfig:
    args: dict[str, object] = {
        "name": "r",
        "minor": 0,
        "disk": "/dev/loop0",
        "hosts": [DrbdHost("a", "10.0.0.1")],
    }
    args.update(kw)
    return DrbdResourceConfig(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"name": "r 0"}, "name syntax"),
        ({"minor": 1 << 20}, "20-bit"),
        ({"disk": "/dev/loop 0"}, "device path"),
        ({"device": "/tmp/x"}, "under /dev"),
        ({"hosts": []}, "at least one host"),
        ({"hosts": [DrbdHost("a", "10.0.0.1"), DrbdHost("a", "10.0.0.2")]}, "unique"),
        ({"hosts": [DrbdHost("a", "10.0.0.1", node_id=1), DrbdHost("b", "10.0.0.2")]}, "none"),
        (
            {"hosts": [DrbdHost("a", "10.0.0.1", node_id=1), DrbdHost("b", "::1", node_id=1)]},
            "node ids must be unique",
        ),
        ({"connections": [("a", "z")]}, "unknown host"),
        ({"connections": [("a", "a")]}, "two different hosts"),
        ({"sections": [DrbdSection("net"), DrbdSection("net")]}, "at most once"),
    ],
)
def test_resource_rules(kw: dict[str, object], words: str) -> None:
    with pytest.raises(SpecError, match=words):
        _res(**kw)


def test_host_and_section_rules() -> None:
    with pytest.raises(SpecError, match="IPv4 or IPv6"):
        DrbdHost("a", "nowhere")
    with pytest.raises(SpecError, match="TCP port"):
        DrbdHost("a", "10.0.0.1", port=0)
    with pytest.raises(SpecError, match=r"0\.\.31"):
        DrbdHost("a", "10.0.0.1", node_id=32)
    with pytest.raises(SpecError, match="must be one of"):
        DrbdSection("syncer")
    with pytest.raises(SpecError, match="keys are"):
        DrbdSection("net", [("Protocol", ("C",))])
    with pytest.raises(SpecError, match="one line"):
        DrbdSection("net", [("protocol", ("C\n",))])
    assert DrbdConnection(("a", "b")).hosts == ("a", "b")


def test_syntax_for_version() -> None:
    assert DrbdSyntax.for_version((8, 4, 11)) is DrbdSyntax.V84
    assert DrbdSyntax.for_version((9, 2, 9)) is DrbdSyntax.V9
    with pytest.raises(SpecError) as err:
        DrbdSyntax.for_version((8, 3, 16))
    assert err.value.field == "drbd.version"


def test_parse_variants() -> None:
    text = """# comment
global { disable-ip-verification; }
resource r0 {
    device minor 5;  # no path
    volume 0 { disk /dev/vdb; meta-disk /dev/vdc; }
    on a { address ipv4 10.0.0.1:7000; node-id 3; }
    on b { address 10.0.0.2:7000; node-id 4; }
    connection { host a address 10.0.0.1:7000; host b; }
}
resource r1 { device /dev/drbd7; disk /dev/loop7; on a { address 10.0.0.1:7001; } }
"""
    r0, r1 = parse_drbd_res_all(text)
    assert (r0.minor, r0.disk, r0.meta_disk, r0.device_path) == (
        5,
        "/dev/vdb",
        "/dev/vdc",
        "/dev/drbd5",
    )
    assert r0.connections == (DrbdConnection(("a", "b")),)
    assert [h.node_id for h in r0.hosts] == [3, 4]
    assert (r1.minor, r1.meta_disk) == (7, "internal")
    with pytest.raises(ParseError, match="expected one resource, found 2"):
        parse_drbd_res(text)


def test_partial_mesh_becomes_pairs() -> None:
    text = """resource r { device minor 0; disk /dev/loop0;
      on a { address 10.0.0.1:7000; node-id 0; } on b { address 10.0.0.2:7000; node-id 1; }
      on c { address 10.0.0.3:7000; node-id 2; }
      connection-mesh { hosts a b; } }"""
    res = parse_drbd_res(text)
    assert res.connections == (DrbdConnection(("a", "b")),)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("resource r {\n", 1, "not closed"),
        ("}\n", 1, "without a section"),
        ("resource r { disk /dev/x }\n", 1, "missing ';'"),
        ("resource r { ; }\n", 1, "';' without"),
        ("{ }\n", 1, "'{' without"),
        ("common { }\n", 1, "unsupported top-level"),
        ('resource r {\n disk "/dev/x;\n}\n', 2, "unterminated"),
        ("resource r { device minor 0; disk /dev/l; }\n", 1, "no 'on HOST'"),
        ("resource r { disk /dev/l; on a { address 1.2.3.4:1; } }\n", 1, "no 'device"),
        ("resource r { device minor 0; on a { address 1.2.3.4:1; } }\n", 1, "no 'disk'"),
        ("resource r {\n device minor 0; disk /dev/l;\n on a { }\n}\n", 3, "has no address"),
        (
            "resource r { device minor 0; disk /dev/l; on a { address 1.2.3.4; } }\n",
            1,
            "ADDRESS:PORT",
        ),
        (
            "resource r { device minor 0; disk /dev/l; on a { address ipv6 1.2.3.4:1; } }",
            1,
            "brackets",
        ),
        (
            "resource r { device minor 0; disk /dev/l; on a { address sdp 1.2.3.4:1; } }",
            1,
            "ipv4|ipv6",
        ),
        (
            "resource r { device minor 0; disk /dev/l; on a { address 1.2.3.4:99999; } }",
            1,
            "TCP port",
        ),
        ("resource r { device minor x; }", 1, "minor must be a number"),
        ("resource r { device /dev/foo; }", 1, "must be /dev/drbdN"),
        ("resource r {\n floating 1.2.3.4:7000 { }\n}", 2, "unsupported statement 'floating'"),
        (
            "resource r {\n volume 0 { disk /dev/a; }\n volume 1 { disk /dev/b; }\n}",
            3,
            "several volumes",
        ),
        (
            "resource r { device minor 0;\n on a { disk /dev/a; address 1.2.3.4:1; }\n"
            " on b { disk /dev/b; address 1.2.3.5:1; } }",
            3,
            "different device",
        ),
        ("resource r {\n net { protocol C; }\n net { }\n}", 3, "given twice"),
        ("resource r {\n net { foo { } }\n}", 2, "nested sections"),
        ("resource r {\n connection-mesh { host a; }\n}", 2, "hosts A B"),
        ("resource r {\n connection { host a; }\n}", 2, "exactly two hosts"),
        ("resource r {\n meta-disk /dev/x 0;\n}", 2, "indexed meta-disks"),
    ],
)
def test_res_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_drbd_res_all(text)
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)


# -- /proc/drbd --------------------------------------------------------------------------


def test_proc_drbd_84_standalone_primary() -> None:
    info = parse_proc_drbd((PROC / "8.4.11-standalone-primary.txt").read_text())
    assert (info.version, info.api, info.proto) == ((8, 4, 11), 1, (86, 101))
    assert info.syntax is DrbdSyntax.V84
    assert info.build.startswith("srcversion: ")
    (dev,) = info.devices
    assert (dev.minor, dev.cs, dev.role, dev.peer_role, dev.disk, dev.peer_disk) == (
        0,
        "StandAlone",
        "Primary",
        "Unknown",
        "UpToDate",
        "DUnknown",
    )
    assert dev.protocol is None and dev.flags == "r-----" and not dev.suspended
    assert dev.counters is not None and dev.counters.dr == 2120 and dev.counters.oos == 0
    assert dev.counters.wo == "f"
    assert info.device(0) is dev and info.device(1) is None


def test_proc_drbd_84_sync() -> None:
    info = parse_proc_drbd((PROC / "8.4.11-sync-source-and-hole.txt").read_text())
    source, hole = info.devices
    assert source.sync is not None
    assert (source.sync.percent, source.sync.left_kib, source.sync.total_kib) == (
        25.0,
        6144 * 1024,
        8192 * 1024,
    )
    assert (source.sync.finish_s, source.sync.speed_kib_s, source.sync.verify) == (90, 34952, False)
    assert hole.minor == 2 and hole.unconfigured and hole.counters is None
    info = parse_proc_drbd((PROC / "8.4.11-sync-target-want.txt").read_text())
    target, diskless = info.devices
    assert target.sync is not None and target.sync.total_kib == 1048576
    assert target.counters is not None and target.counters.lo == 1
    assert diskless.suspended and diskless.disk == "Diskless"


def test_proc_drbd_9() -> None:
    info = parse_proc_drbd((PROC / "9.2.9.txt").read_text())
    assert (info.version, info.api, info.proto, info.devices) == ((9, 2, 9), 2, (86, 122), ())
    assert info.transports == (("tcp", "9.2.9"),) and info.transport_api == 21
    assert info.syntax is DrbdSyntax.V9
    info = parse_proc_drbd((PROC / "9.3.3-compat84.txt").read_text())
    assert info.compat84 and info.devices[0].role == "Primary"
    info = parse_proc_drbd("version: 9.2.0-rc.7 (api:2/proto:86-121)\n")
    assert info.version == (9, 2, 0) and info.version_text == "9.2.0-rc.7" and info.build == ""


def test_proc_drbd_details_are_kept() -> None:
    text = (PROC / "8.4.11-standalone-primary.txt").read_text()
    text += "\tact_log: used:0/1237 hits:0 misses:0 starving:0 locked:0 changed:0\n"
    (dev,) = parse_proc_drbd(text).devices
    assert dev.details == ("act_log: used:0/1237 hits:0 misses:0 starving:0 locked:0 changed:0",)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "first line must be"),
        ("drbd not loaded\n", 1, "first line must be"),
        ("version: 8.4.11 (api:1/proto:86-101) extra\n", 1, "after the version"),
        ("version: 8.4.11 (api:1/proto:86-101)\nsrcversion: X\nnonsense\n", 3, "device line"),
        ("version: 8.4.11 (api:1/proto:86-101)\nsrcversion: X\n    ns:0\n", 3, "device line"),
    ],
)
def test_proc_drbd_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_proc_drbd(text)
    assert info.value.line == line
    assert words in str(info.value)


# -- drbdadm status ------------------------------------------------------------------------


def _status(name: str) -> str:
    return (DRBD / "status" / name).read_text()


def test_status_single_node() -> None:
    for name in ("v9-single-node.txt", "v84-single-node.txt", "v9-color.txt"):
        (res,) = parse_drbd_status(_status(name))
        assert (res.name, res.role, res.connections) == ("ocfs2-resource", "Primary", ())
        (dev,) = res.devices
        assert (dev.volume, dev.disk) == (None, "UpToDate")


def test_status_connected_and_connecting() -> None:
    (res,) = parse_drbd_status(_status("v9-connected.txt"))
    (conn,) = res.connections
    assert (conn.name, conn.role, conn.connected) == ("beta", "Secondary", True)
    assert conn.peer_devices[0].peer_disk == "UpToDate"
    (res,) = parse_drbd_status(_status("v9-connecting.txt"))
    assert [(c.name, c.connection, c.connected) for c in res.connections] == [
        ("beta", "Connecting", False),
        ("gamma", "StandAlone", False),
    ]


def test_status_volumes_and_two_resources() -> None:
    r1, r2 = parse_drbd_status(_status("v9-volumes-two-resources.txt"))
    assert [(d.volume, d.disk) for d in r1.devices] == [(0, "Inconsistent"), (1, "UpToDate")]
    peer0, peer1 = r1.connections[0].peer_devices
    assert (peer0.volume, peer0.replication, peer0.done) == (0, "SyncTarget", 42.17)
    assert (peer1.volume, peer1.replication, peer1.done) == (1, None, None)
    assert r2.suspended == "user"
    assert r2.devices[0].get("client") == "yes" and r2.devices[0].get("quorum") == "no"


def test_status_verbose_wrapped() -> None:
    (res,) = parse_drbd_status(_status("v9-verbose-wrapped.txt"))
    assert res.get("node-id") == "0" and res.suspended == "no"
    (conn,) = res.connections
    assert conn.node_id == 1 and conn.get("rs-in-flight") == "0"
    assert conn.connection == "Connected" and conn.connected
    assert res.devices[0].get("backing_dev") == "/dev/loop1"
    assert conn.peer_devices[0].get("resync-suspended") == "no"


def test_status_84_peer() -> None:
    (res,) = parse_drbd_status(_status("v84-syncing.txt"))
    (conn,) = res.connections
    assert conn.name == "peer"
    assert conn.peer_devices[0].replication == "SyncSource"
    assert conn.peer_devices[0].done == 12.5


def test_status_none_configured() -> None:
    assert parse_drbd_status(_status("v9-none.txt")) == ()
    assert parse_drbd_status("") == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("  disk:UpToDate\n", 1, "before any resource"),
        ("r role:Primary\n disk:UpToDate\n", 2, "indentation of 1"),
        ("r role:Primary\n  disk:UpToDate\n    peer-disk:x\n", 3, "indentation of 4"),
        ("r role\n", 1, "key:value"),
        ("role:Primary\n", 1, "starts with the resource name"),
        ("r role:Primary\n\t disk:x\n", 2, "tab"),
    ],
)
def test_status_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_drbd_status(text)
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)


def test_status_wrapped_resource_line() -> None:
    (res,) = parse_drbd_status("r role:Primary\n    suspended:no\n  disk:UpToDate\n")
    assert res.suspended == "no"


def test_data_files_are_present() -> None:
    assert sorted(p.name for p in DRBD.glob("*.dump")) == sorted(f"{c}.dump" for c in CASES)
    assert sorted(p.name for p in DRBD.glob("*.res")) == sorted(f"{c}.res" for c in CASES)
