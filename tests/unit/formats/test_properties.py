"""Property tests: render -> parse round trips, and parsers fed any text.

Every parser raises nothing but ParseError on arbitrary text; the kernel log parser and
the assembler raise nothing at all and drop no line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats.cluster_conf import (
    ClusterConf,
    ClusterStanza,
    HeartbeatStanza,
    NodeStanza,
    parse_cluster_conf,
    parse_cluster_confs,
    render_cluster_conf,
)
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
from ocfs2lab.formats.kmsg import KmsgAssembler, parse_kernel_line, parse_kernel_log
from ocfs2lab.formats.o2cb import (
    parse_cluster_status,
    parse_list_cluster,
    parse_list_clusters,
    parse_list_heartbeats,
    parse_list_nodes,
)
from ocfs2lab.formats.ping import parse_ping
from ocfs2lab.formats.proc_drbd import parse_proc_drbd

from .conftest import DATA

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- cluster.conf --------------------------------------------------------------------------

_TEXT_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))


def _valid_value(value: str) -> bool:
    try:
        ClusterStanza(name=value, node_count=0)
    except SpecError:
        return False
    return True


def _valid_extra(value: str) -> bool:
    try:
        ClusterStanza(name="c", node_count=0, extra=[("k", value)])
    except SpecError:
        return False
    return True


values = st.text(_TEXT_CHARS, min_size=1, max_size=20).filter(_valid_value)
extra_values = (
    st.lists(st.text(_TEXT_CHARS, max_size=12), min_size=1, max_size=3)
    .map("\n".join)
    .filter(_valid_extra)
)
keys = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)


def _extras(known: set[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(
        st.tuples(keys.filter(lambda k: k not in known), extra_values),
        max_size=3,
        unique_by=lambda kv: kv[0],
    )


@st.composite
def cluster_confs(draw: st.DrawFn, name: str | None = None) -> ClusterConf:
    cname = name if name is not None else draw(values)
    count = draw(st.integers(0, 6))
    names = draw(st.lists(values, min_size=count, max_size=count, unique=True))
    numbers = draw(st.lists(st.integers(0, 254), min_size=count, max_size=count, unique=True))
    addresses = draw(st.lists(st.ip_addresses(v=4), min_size=count, max_size=count, unique=True))
    nodes = [
        NodeStanza(
            name=n,
            number=k,
            ip_address=ipaddress.IPv4Address(a),
            cluster=cname,
            ip_port=draw(st.integers(1, 65534)),
            extra=draw(_extras({"cluster", "name", "ip_address", "ip_port", "number"})),
        )
        for n, k, a in zip(names, numbers, addresses, strict=True)
    ]
    regions = draw(st.lists(values, max_size=3, unique=True))
    heartbeats = [
        HeartbeatStanza(region=r, cluster=cname, extra=draw(_extras({"cluster", "region"})))
        for r in regions
    ]
    stanza = ClusterStanza(
        name=cname,
        node_count=draw(st.one_of(st.just(count), st.integers(0, 2**32 - 1))),
        heartbeat_mode=draw(st.sampled_from(["local", "global"])),
        extra=draw(_extras({"name", "heartbeat_mode", "node_count"})),
    )
    return ClusterConf(cluster=stanza, nodes=nodes, heartbeats=heartbeats)


@st.composite
def several_confs(draw: st.DrawFn) -> list[ClusterConf]:
    cluster_names = draw(st.lists(values, min_size=1, max_size=3, unique=True))
    return [draw(cluster_confs(name)) for name in cluster_names]


@SETTINGS
@given(several_confs())
def test_cluster_conf_round_trip(confs: list[ClusterConf]) -> None:
    text = render_cluster_conf(confs)
    assert list(parse_cluster_confs(text)) == confs
    assert render_cluster_conf(parse_cluster_confs(text)) == text


@SETTINGS
@given(cluster_confs())
def test_single_cluster_round_trip(conf: ClusterConf) -> None:
    assert parse_cluster_conf(conf.render()) == conf


# -- DRBD resource files ---------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,15}", fullmatch=True)
paths = st.from_regex(r"/dev/[A-Za-z0-9/._-]{1,20}", fullmatch=True)
args = st.one_of(
    st.from_regex(r"[A-Za-z0-9/._-]{1,12}", fullmatch=True),
    st.text(
        st.characters(codec="utf-8", blacklist_characters="\n"),
        min_size=1,
        max_size=20,
    ),
)
sections = st.lists(
    st.builds(
        DrbdSection,
        st.sampled_from(["options", "net", "disk", "startup", "handlers"]),
        st.lists(
            st.tuples(
                st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True),
                st.lists(args, max_size=2).map(tuple),
            ),
            max_size=3,
        ),
    ),
    max_size=3,
    unique_by=lambda s: s.name,
)


@st.composite
def drbd_resources(draw: st.DrawFn, syntax: DrbdSyntax) -> DrbdResourceConfig:
    count = draw(st.integers(1, 2 if syntax is DrbdSyntax.V84 else 5))
    host_names = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    ids: list[int | None]
    if syntax is DrbdSyntax.V9:
        ids = list(draw(st.lists(st.integers(0, 31), min_size=count, max_size=count, unique=True)))
    else:
        ids = [None] * count
    hosts = [
        DrbdHost(
            name=n,
            address=draw(st.ip_addresses()),
            port=draw(st.integers(1, 65535)),
            node_id=i,
        )
        for n, i in zip(host_names, ids, strict=True)
    ]
    connections: list[DrbdConnection] = []
    if syntax is DrbdSyntax.V9 and count > 1 and draw(st.booleans()):
        pairs = [(a, b) for i, a in enumerate(host_names) for b in host_names[i + 1 :]]
        chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
        connections = [DrbdConnection(p) for p in chosen]
    minor = draw(st.integers(0, (1 << 20) - 1))
    return DrbdResourceConfig(
        name=draw(names),
        minor=minor,
        disk=draw(paths),
        hosts=hosts,
        meta_disk=draw(st.one_of(st.just("internal"), paths)),
        device=draw(st.one_of(st.none(), paths)),
        connections=connections,
        sections=draw(sections),
    )


@SETTINGS
@given(st.sampled_from(list(DrbdSyntax)).flatmap(drbd_resources))
def test_drbd_res_round_trip(res: DrbdResourceConfig) -> None:
    syntax = DrbdSyntax.V84 if all(h.node_id is None for h in res.hosts) else DrbdSyntax.V9
    assert parse_drbd_res(render_drbd_res(res, syntax)) == res


# -- arbitrary text ----------------------------------------------------------------------------

PARSERS: list[Callable[[str], Any]] = [
    parse_cluster_confs,
    parse_cluster_conf,
    parse_list_cluster,
    parse_list_nodes,
    parse_list_heartbeats,
    parse_list_clusters,
    parse_cluster_status,
    parse_drbd_res_all,
    parse_drbd_res,
    parse_proc_drbd,
    parse_drbd_status,
    parse_ping,
]
_SPECIAL = st.sampled_from([*'{};:=#\n\t \\"[]()/.,-0123456789', "\r", "\x00", "\x1b["])
_SAMPLES = [
    p.read_text()
    for p in sorted(DATA.rglob("*"))
    if p.is_file() and p.suffix in {".conf", ".txt", ".res", ".dump", ".stdout"}
]


@st.composite
def mutated_samples(draw: st.DrawFn) -> str:
    """A real sample with a few characters deleted, replaced or inserted."""
    text = draw(st.sampled_from(_SAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        char = draw(_SPECIAL)
        if action == "delete":
            text = text[:at] + text[at + 1 :]
        elif action == "insert":
            text = text[:at] + char + text[at:]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


any_text = st.one_of(
    st.text(max_size=300),
    st.lists(_SPECIAL, max_size=60).map("".join),
    mutated_samples(),
)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@SETTINGS
@given(text=any_text)
def test_parsers_raise_only_parse_error(parser: Callable[[str], Any], text: str) -> None:
    with contextlib.suppress(ParseError):
        parser(text)


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_parsers_refuse_non_text(parser: Callable[[str], Any]) -> None:
    with pytest.raises(ParseError):
        parser(None)  # type: ignore[arg-type]


@SETTINGS
@given(st.lists(any_text, max_size=12))
def test_kmsg_never_raises_and_drops_nothing(lines: list[str]) -> None:
    single = [line.replace("\n", " ") for line in lines]
    for line in single:
        event = parse_kernel_line(line)
        assert event.raw == line
    events = KmsgAssembler(max_interleaved=3).feed_all(single)
    raws = [raw for e in events for raw in e.raw.split("\n")]
    assert raws == single
    parse_kernel_log("\n".join(lines))


@SETTINGS
@given(st.binary(max_size=200))
def test_kmsg_takes_bytes(data: bytes) -> None:
    event = parse_kernel_line(data)  # type: ignore[arg-type]
    assert event.raw == data.decode("utf-8", "replace")


def test_samples_were_found() -> None:
    assert len(_SAMPLES) > 20
    # Every kind of captured file feeds the mutations, not only one of them.
    suffixes = {p.suffix for p in DATA.rglob("*") if p.is_file()}
    assert {".conf", ".txt", ".res", ".dump", ".stdout"} <= suffixes
    assert all(text.strip() for text in _SAMPLES)
