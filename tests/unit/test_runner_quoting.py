"""Pure command-line building of the ssh and docker transports: no process is started."""

from __future__ import annotations

import shlex
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocfs2lab.errors import SpecError, TransportError
from ocfs2lab.runner.docker import _Demuxer, demux_frames, exec_argv
from ocfs2lab.runner.ssh import (
    MAX_SOCKET_PATH,
    SshRunner,
    SshTarget,
    remote_argv,
    remote_command_line,
    remote_timeout,
)

NASTY = [
    "with space",
    "single ' quote",
    'double " quote',
    "$HOME $(id) `id` ${x}",
    "semi; colon && || | &",
    "glob * ? [a]",
    "new\nline",
    "ünïcödé ✓",
    "",
    "-n",
    "--",
    "a=b",
]

# Arguments are any text without NUL (which argv cannot carry).
arg_text = st.text(st.characters(codec="utf-8", exclude_characters="\0"))


def _split_remote(line: str) -> list[str]:
    assert line.endswith("; exit $?")
    return shlex.split(line.removesuffix("; exit $?"))


def test_remote_argv_wraps_in_timeout_and_env() -> None:
    assert remote_argv(["ls", "-l"], 30) == [
        "timeout",
        "-s",
        "KILL",
        "30",
        "env",
        "--",
        "ls",
        "-l",
    ]
    assert remote_argv(["true"], 5, {"A": "1", "B": "x y"})[6:] == ["A=1", "B=x y", "true"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.1, "1"), (1, "1"), (1.5, "2"), (2.0, "2"), (119.01, "120")]
)
def test_remote_timeout_rounds_up_to_whole_seconds(seconds: float, text: str) -> None:
    assert remote_timeout(seconds) == text


def test_nasty_arguments_survive_quoting() -> None:
    line = remote_command_line(NASTY, 10, {"V": "it's $x"})
    assert _split_remote(line) == remote_argv(NASTY, 10, {"V": "it's $x"})


@given(
    st.lists(arg_text, min_size=1, max_size=8),
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), arg_text, max_size=3
    ),
)
def test_any_argv_round_trips_through_the_remote_shell_line(
    argv: list[str], env: dict[str, str]
) -> None:
    assert _split_remote(remote_command_line(argv, 7, env)) == remote_argv(argv, 7, env)


def test_no_word_is_left_unquoted_when_it_has_shell_syntax() -> None:
    line = remote_command_line(["echo", "a;b", "$(x)"], 3)
    assert "'a;b'" in line and "'$(x)'" in line


def test_target_where_and_destination() -> None:
    target = SshTarget(host="10.0.0.5", port=2222, user="admin")
    assert target.where == "ssh:admin@10.0.0.5:2222"
    assert target.destination == "admin@10.0.0.5"


def test_target_never_uses_the_users_known_hosts(tmp_path: Path) -> None:
    loose = SshTarget(host="h").options()
    assert "UserKnownHostsFile=/dev/null" in loose
    assert "StrictHostKeyChecking=no" in loose
    assert loose[:2] == ["-F", "none"]  # no user or system ssh config
    lab = tmp_path / "known_hosts"
    strict = SshTarget(host="h", known_hosts=lab, strict_host_keys=True).options()
    assert f"UserKnownHostsFile={lab}" in strict
    assert "StrictHostKeyChecking=yes" in strict
    assert "GlobalKnownHostsFile=/dev/null" in strict
    assert not any("~/.ssh" in w or ".ssh/known_hosts" in w for w in loose + strict)


def test_target_options_identity_and_extra_first(tmp_path: Path) -> None:
    key = tmp_path / "id"
    opts = SshTarget(
        host="h", identity_file=key, connect_timeout=2.5, extra_options={"ConnectTimeout": "9"}
    ).options()
    assert f"IdentityFile={key}" in opts and "IdentitiesOnly=yes" in opts
    # ssh keeps the first value of an option: the caller's extra option must come first.
    assert opts.index("ConnectTimeout=9") < opts.index("ConnectTimeout=3")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": ""},
        {"host": "-oProxyCommand=x"},
        {"host": "a b"},
        {"host": "h", "port": 0},
        {"host": "h", "port": 70000},
        {"host": "h", "user": "a b"},
        {"host": "h", "user": "-l"},
        {"host": "h", "connect_timeout": 0},
        {"host": "h", "strict_host_keys": True},
        {"host": "h", "extra_options": {"Bad Key": "x"}},
        {"host": "h", "extra_options": {"Key": "two\nlines"}},
    ],
)
def test_target_rejects_bad_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        SshTarget(**kwargs)  # type: ignore[arg-type]


def test_command_argv_goes_through_the_master(tmp_path: Path) -> None:
    runner = SshRunner(SshTarget(host="127.0.0.1", port=2200), tmp_path)
    argv = runner.command_argv(["printf", "%s\n", "a b"], 12, {"K": "v"})
    assert argv[:5] == ["ssh", "-S", str(tmp_path / "ctl"), "-o", "ControlMaster=no"]
    assert "-T" in argv
    dest = argv.index("root@127.0.0.1")
    assert argv[dest + 1] == "--"
    assert len(argv) == dest + 3  # one remote string, built by us
    assert _split_remote(argv[-1]) == remote_argv(["printf", "%s\n", "a b"], 12, {"K": "v"})
    assert runner.where == "ssh:root@127.0.0.1:2200"


def test_master_argv_is_a_persistent_multiplexing_master(tmp_path: Path) -> None:
    runner = SshRunner(SshTarget(host="h"), tmp_path, persist=30, server_alive_interval=4)
    argv = runner.master_argv()
    assert argv[:4] == ["ssh", "-f", "-N", "-M"]
    assert ["-S", str(tmp_path / "ctl")] == argv[4:6]
    assert "ControlPersist=30" in argv and "ServerAliveInterval=4" in argv
    assert argv[-1] == "root@h"


def test_control_argv(tmp_path: Path) -> None:
    runner = SshRunner(SshTarget(host="h"), tmp_path)
    argv = runner.control_argv("forward", "-L", "/a.sock:/b.sock")
    assert argv[-5:] == ["-O", "forward", "-L", "/a.sock:/b.sock", "root@h"]
    assert "ControlMaster=no" in argv


def test_control_path_must_fit_a_unix_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_SOCKET_PATH - len(str(tmp_path))))
    with pytest.raises(SpecError):
        SshRunner(SshTarget(host="h"), deep)


def test_default_control_dir_is_private_short_and_made_only_when_used() -> None:
    runner = SshRunner(SshTarget(host="127.0.0.1", port=1))  # nothing listens on port 1
    try:
        assert len(str(runner.control_path)) < 60
        assert not runner.control_dir.exists()  # a runner never used leaves nothing
        with pytest.raises(TransportError):
            runner.connect()
        assert runner.control_dir.stat().st_mode & 0o077 == 0
    finally:
        runner.close()
    assert not runner.control_dir.exists()


def test_exec_argv_is_the_same_wrapper_without_env() -> None:
    assert exec_argv(["cat"], 2.5) == ["timeout", "-s", "KILL", "3", "env", "--", "cat"]


def _frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def test_demux_frames_splits_streams_and_keeps_partial_tail() -> None:
    blob = _frame(1, b"out1 ") + _frame(2, b"err1") + _frame(1, b"\x00\xffout2") + _frame(2, b"")
    partial = _frame(1, b"incomplete")[:-3]
    out, err, rest = demux_frames(blob + partial)
    assert out == b"out1 \x00\xffout2"
    assert err == b"err1"
    assert rest == partial


def test_demuxer_handles_any_chunking() -> None:
    frames = [_frame(1, b"a" * 70000), _frame(2, b"e"), _frame(1, b"tail")]
    blob = b"".join(frames)
    for size in (1, 3, 7, 8, 9, 4096, len(blob)):
        demux = _Demuxer()
        for pos in range(0, len(blob), size):
            demux.feed(blob[pos : pos + size])
        assert bytes(demux.stdout) == b"a" * 70000 + b"tail"
        assert bytes(demux.stderr) == b"e"
        assert demux.leftover == 0
