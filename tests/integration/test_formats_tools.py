"""The pure formats checked against the real tools: o2cb (ocfs2-tools) and drbdadm.

These run the tools installed on this machine, never against /etc: o2cb gets a temporary
``--config-file``; drbdadm gets ``-c FILE dump`` and ``__DRBD_NODE__`` (drbdadm's own switch
to pretend to be another host). Each test skips when its tool is not installed.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocfs2lab.errors import ParseError
from ocfs2lab.formats.cluster_conf import (
    ClusterConf,
    ClusterStanza,
    HeartbeatStanza,
    NodeStanza,
    parse_cluster_conf,
    render_cluster_conf,
)
from ocfs2lab.formats.drbd import (
    DrbdHost,
    DrbdResourceConfig,
    DrbdSyntax,
    parse_drbd_res,
    render_drbd_res,
)
from ocfs2lab.formats.o2cb import parse_list_cluster, parse_list_clusters
from tests.unit.formats.drbd_cases import CASES, assert_same_as_dump

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"
O2CB = shutil.which("o2cb") or ("/usr/sbin/o2cb" if Path("/usr/sbin/o2cb").exists() else None)
DRBDADM = shutil.which("drbdadm") or (
    "/usr/sbin/drbdadm" if Path("/usr/sbin/drbdadm").exists() else None
)
DRBDADM_84 = next(
    (p for p in ("/usr/lib/drbd/drbdadm-84", "/lib/drbd/drbdadm-84") if Path(p).exists()), None
)
needs_o2cb = pytest.mark.skipif(O2CB is None, reason="o2cb (ocfs2-tools) is not installed")
needs_drbdadm = pytest.mark.skipif(DRBDADM is None, reason="drbdadm (drbd-utils) not installed")
needs_drbdadm_84 = pytest.mark.skipif(
    DRBDADM_84 is None, reason="drbdadm-84 (drbd-utils' DRBD 8.4 tool) is not installed"
)
LIVE = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

# -- o2cb ------------------------------------------------------------------------------------


def o2cb(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert O2CB is not None
    return subprocess.run(
        [O2CB, f"--config-file={config}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )


def _build_with_o2cb(config: Path, conf: ClusterConf) -> None:
    """Make o2cb write ``conf`` from scratch, one command per object."""
    o2cb(config, "add-cluster", conf.name)
    for node in conf.nodes:
        o2cb(
            config,
            "add-node",
            conf.name,
            node.name,
            "--ip",
            str(node.ip_address),
            "--port",
            str(node.ip_port),
            "--number",
            str(node.number),
        )
    for hb in conf.heartbeats:
        o2cb(config, "add-heartbeat", conf.name, hb.region)
    if conf.cluster.heartbeat_mode.value != "local":
        o2cb(config, "heartbeat-mode", conf.name, conf.cluster.heartbeat_mode.value)


def _without_extras(conf: ClusterConf) -> ClusterConf:
    return ClusterConf(
        cluster=ClusterStanza(
            name=conf.name,
            node_count=conf.cluster.node_count,
            heartbeat_mode=conf.cluster.heartbeat_mode,
        ),
        nodes=[
            NodeStanza(
                name=n.name,
                number=n.number,
                ip_address=n.ip_address,
                cluster=n.cluster,
                ip_port=n.ip_port,
            )
            for n in conf.nodes
        ],
        heartbeats=[HeartbeatStanza(region=h.region, cluster=h.cluster) for h in conf.heartbeats],
    )


# Names o2cb's own commands accept (o2cbtool_validate_clustername: alnum, at most 16).
o2cb_names = st.from_regex(r"[A-Za-z0-9]{1,16}", fullmatch=True)
regions = st.from_regex(r"[0-9A-F]{32}", fullmatch=True)


@st.composite
def o2cb_clusters(draw: st.DrawFn) -> ClusterConf:
    count = draw(st.integers(0, 5))
    nodes = list(
        zip(
            draw(st.lists(o2cb_names, min_size=count, max_size=count, unique=True)),
            draw(st.lists(st.integers(0, 254), min_size=count, max_size=count, unique=True)),
            draw(st.lists(st.ip_addresses(v=4), min_size=count, max_size=count, unique=True)),
            strict=True,
        )
    )
    return ClusterConf.build(
        draw(o2cb_names),
        [(n, k, ipaddress.IPv4Address(a)) for n, k, a in nodes],
        regions=draw(st.lists(regions, max_size=3, unique=True)),
        heartbeat_mode=draw(st.sampled_from(["local", "global"])),
        port=draw(st.integers(1, 65534)),
    )


@needs_o2cb
@pytest.mark.parametrize(
    "name", ["two-nodes-local", "three-nodes-heartbeat", "global-two-regions", "empty-cluster"]
)
def test_o2cb_writes_what_we_render(tmp_path: Path, name: str) -> None:
    expected = parse_cluster_conf((DATA / "ocfs2-tools" / f"{name}.conf").read_text())
    config = tmp_path / "cluster.conf"
    _build_with_o2cb(config, expected)
    assert config.read_text() == render_cluster_conf(expected)


@needs_o2cb
@LIVE
@given(conf=o2cb_clusters())
def test_o2cb_writes_what_we_render_generated(
    tmp_path_factory: pytest.TempPathFactory, conf: ClusterConf
) -> None:
    config = tmp_path_factory.mktemp("o2cb") / "cluster.conf"
    _build_with_o2cb(config, conf)
    assert config.read_text() == conf.render()


@needs_o2cb
@LIVE
@given(conf=o2cb_clusters(), other=o2cb_clusters())
def test_o2cb_reads_and_rewrites_our_file(
    tmp_path_factory: pytest.TempPathFactory, conf: ClusterConf, other: ClusterConf
) -> None:
    """o2cb loads the rendered file, lists it back unchanged, and rewrites it identically."""
    if other.name == conf.name:
        other = ClusterConf.build(conf.name + "x" if len(conf.name) < 16 else "z", [])
    config = tmp_path_factory.mktemp("o2cb") / "cluster.conf"
    config.write_text(render_cluster_conf([conf, other]))
    listed = o2cb(config, "list-cluster", conf.name).stdout
    assert parse_list_cluster(listed) == conf
    oneline = o2cb(config, "list-cluster", "--oneline", other.name).stdout
    assert parse_list_cluster(oneline) == other
    assert parse_list_clusters(o2cb(config, "list-clusters").stdout) == (conf.name, other.name)
    # A change makes o2cb store the whole file again: the result is our rendering of it.
    o2cb(config, "add-heartbeat", conf.name, "F" * 32)
    grown = ClusterConf(
        cluster=conf.cluster,
        nodes=conf.nodes,
        heartbeats=[*conf.heartbeats, HeartbeatStanza(region="F" * 32, cluster=conf.name)],
    )
    assert config.read_text() == render_cluster_conf([grown, other])


@needs_o2cb
def test_o2cb_ignores_our_extra_keys(tmp_path: Path) -> None:
    text = (DATA / "ocfs2-tools" / "three-nodes-heartbeat.conf").read_text()
    conf = parse_cluster_conf(text.replace("\tname = node2\n", "\tname = node2\n\track = b12\n"))
    assert conf.node("node2").extra == (("rack", "b12"),)
    config = tmp_path / "cluster.conf"
    config.write_text(conf.render())
    listed = parse_list_cluster(o2cb(config, "list-cluster", conf.name).stdout)
    assert listed == _without_extras(conf)


# -- drbdadm ---------------------------------------------------------------------------------


def drbdadm_dump(tool: str, text: str, me: str, tmp: Path) -> str:
    path = tmp / "r.res"
    path.write_text(text)
    done = subprocess.run(
        [tool, "-c", str(path), "dump"],
        env={**os.environ, "__DRBD_NODE__": me},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.replace(str(path), "r.res")


def _tool(syntax: DrbdSyntax) -> str:
    tool = DRBDADM_84 if syntax is DrbdSyntax.V84 else DRBDADM
    if tool is None:
        pytest.skip(f"no drbdadm for DRBD {syntax.value}")
    return tool


@needs_drbdadm
@pytest.mark.parametrize("case", sorted(CASES))
def test_drbdadm_accepts_rendered_files(tmp_path: Path, case: str) -> None:
    res, syntax, me = CASES[case]
    dump = drbdadm_dump(_tool(syntax), render_drbd_res(res, syntax), me, tmp_path)
    assert_same_as_dump(parse_drbd_res(dump), res, syntax)
    captured = (DATA / "drbd-utils" / f"{case}.dump").read_text()
    assert dump == captured.replace(f"{case}.res", "r.res")


drbd_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,15}", fullmatch=True)


@st.composite
def live_resources(draw: st.DrawFn, syntax: DrbdSyntax) -> DrbdResourceConfig:
    """Resources drbdadm must accept: distinct addresses, this host first on 127.0.0.1."""
    count = draw(st.integers(1, 2 if syntax is DrbdSyntax.V84 else 4))
    host_names = draw(st.lists(drbd_names, min_size=count, max_size=count, unique=True))
    others = draw(
        st.lists(
            st.ip_addresses(v=4).filter(lambda a: not a.is_loopback),
            min_size=count - 1,
            max_size=count - 1,
            unique=True,
        )
    )
    ids = draw(st.lists(st.integers(0, 31), min_size=count, max_size=count, unique=True))
    addresses = [ipaddress.IPv4Address("127.0.0.1"), *others]
    port = draw(st.integers(1024, 65535))
    hosts = [
        DrbdHost(n, a, port, i if syntax is DrbdSyntax.V9 else None)
        for n, a, i in zip(host_names, addresses, ids, strict=True)
    ]
    return DrbdResourceConfig(
        name=draw(drbd_names),
        minor=draw(st.integers(0, 1000)),
        disk=draw(st.from_regex(r"/dev/[a-z][a-z0-9]{0,8}", fullmatch=True)),
        hosts=hosts,
    )


@needs_drbdadm
@needs_drbdadm_84
@LIVE
@given(data=st.data())
def test_drbdadm_accepts_generated_files(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    syntax = data.draw(st.sampled_from(list(DrbdSyntax)))
    res = data.draw(live_resources(syntax))
    tmp = tmp_path_factory.mktemp("drbd")
    dump = drbdadm_dump(_tool(syntax), render_drbd_res(res, syntax), res.hosts[0].name, tmp)
    assert_same_as_dump(parse_drbd_res(dump), res, syntax)


@needs_drbdadm
def test_drbdadm_refuses_what_we_refuse_to_parse(tmp_path: Path) -> None:
    """A file whose minor is not a number is refused by our parser and by drbdadm: the
    check works both ways."""
    res = CASES["single-node.v9"][0]
    path = tmp_path / "r.res"
    text = render_drbd_res(res, DrbdSyntax.V9)
    assert "minor 0;" in text
    path.write_text(text.replace("minor 0;", "minor zero;"))
    with pytest.raises(ParseError, match="minor must be a number"):
        parse_drbd_res(path.read_text())
    assert DRBDADM is not None
    done = subprocess.run(
        [DRBDADM, "-c", str(path), "dump"],
        env={**os.environ, "__DRBD_NODE__": "node1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    assert "zero" in done.stderr, done.stderr  # refused for the minor, not for another reason
