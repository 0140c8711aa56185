"""One contract, three real transports: local (sh), ssh (throwaway sshd), docker exec.

Every test taking the ``runner`` fixture runs against each transport for real. The tests
after the contract check what is specific to one transport (ssh multiplexing, forwarding,
errors of the way there).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from ocfs2lab.errors import CommandFailed, CommandTimeout, SpecError, TransportError, WaitTimeout
from ocfs2lab.runner.base import CommandResult, Runner
from ocfs2lab.runner.docker import DockerExecRunner
from ocfs2lab.runner.ssh import SshRunner, SshTarget
from ocfs2lab.wait import wait_until
from tests.support.dockerd import PrivateDockerd
from tests.support.sshd import ThrowawaySshd, free_port

pytestmark = pytest.mark.integration

NASTY_ARGS = [
    "plain",
    "with space",
    "  leading and trailing  ",
    "single ' quote",
    'double " quote',
    "both '\" and `backtick`",
    "$HOME and ${PATH} and $(echo no) and $((1+1))",
    "semi; colon && and || pipe | amp &",
    "glob * ? [abc] ~",
    "back\\slash \\n not a newline",
    "new\nline",
    "tab\there",
    "ünïcödé ✓ 日本語 🚀",
    "",
    "-n",
    "--",
    "#not a comment",
    "> redirect < in",
]


# -- the contract -------------------------------------------------------------------------


def test_where_and_duration(runner: Runner) -> None:
    res = runner.run(["true"])
    assert res.where == runner.where
    assert res.where == "local" or res.where.startswith(("ssh:", "docker:"))
    if isinstance(runner, SshRunner):
        assert res.where == f"ssh:{runner.target.user}@127.0.0.1:{runner.target.port}"
    if isinstance(runner, DockerExecRunner):
        assert res.where == "docker:o2test-contract"
    assert 0 < res.duration < 30
    assert res.argv == ("true",)
    assert res.ok and not res.timed_out


def test_stdout_and_stderr_are_separate(runner: Runner) -> None:
    res = runner.run(["sh", "-c", "echo to-out; echo to-err >&2; echo more-out"])
    assert res.stdout == "to-out\nmore-out\n"
    assert res.stderr == "to-err\n"


@pytest.mark.parametrize("code", [0, 1, 2, 7, 100, 254])
def test_exit_codes(runner: Runner, code: int) -> None:
    res = runner.run(["sh", "-c", f"exit {code}"], check=False)
    assert res.exit_code == code
    assert res.ok is (code == 0)


def test_false_is_one(runner: Runner) -> None:
    assert runner.run(["false"], check=False).exit_code == 1


def test_check_raises_command_failed_with_result(runner: Runner) -> None:
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", "echo partial; echo broken >&2; exit 3"])
    result = info.value.result
    assert isinstance(result, CommandResult)
    assert result.exit_code == 3
    assert result.stdout == "partial\n"
    assert result.stderr == "broken\n"
    assert result.where == runner.where
    assert "exited with 3" in str(info.value) and "broken" in str(info.value)


def test_arguments_arrive_intact(runner: Runner) -> None:
    res = runner.run(["printf", "%s\\n", *NASTY_ARGS])
    assert res.stdout == "".join(a + "\n" for a in NASTY_ARGS)


def test_each_argument_is_one_word(runner: Runner) -> None:
    res = runner.run(["sh", "-c", 'echo "$#"', "sh", *NASTY_ARGS])
    assert res.stdout.strip() == str(len(NASTY_ARGS))


def test_program_name_starting_with_dash_is_not_an_option(runner: Runner) -> None:
    res = runner.run(["-o2lab-no-such-program"], check=False)
    assert res.exit_code == 127


def test_stdin_round_trips_binary(runner: Runner) -> None:
    data = b"\x00zero\x00bytes\xff\xfe\r\n" + bytes(range(256)) * 4 + b"no newline at end"
    res = runner.run(["cat"], input=data)
    assert res.stdout_bytes == data


def test_stdin_text_is_sent_as_utf8(runner: Runner) -> None:
    assert runner.run(["cat"], input="grüße ✓\n").stdout == "grüße ✓\n"


def test_no_input_means_eof(runner: Runner) -> None:
    res = runner.run(["cat"], timeout=20)
    assert res.stdout_bytes == b""


def test_invalid_utf8_is_replaced_and_raw_bytes_kept(runner: Runner) -> None:
    res = runner.run(["printf", "ok\\377\\376\\300end\\n"])
    assert res.stdout_bytes == b"ok\xff\xfe\xc0end\n"
    assert res.stdout == "ok\ufffd\ufffd\ufffdend\n"
    err = runner.run(["sh", "-c", "printf '\\377' >&2"])
    assert err.stderr_bytes == b"\xff"
    assert err.stderr == "\ufffd"


def test_env_reaches_the_command(runner: Runner) -> None:
    value = "spaces and 'quotes' \"double\" $dollar ;semi ünï\nnewline"
    res = runner.run(
        ["sh", "-c", 'printf "%s|%s" "$O2_TEST_A" "$O2_TEST_B"'],
        env={"O2_TEST_A": value, "O2_TEST_B": ""},
    )
    assert res.stdout == value + "|"


def test_env_keeps_the_transport_path(runner: Runner) -> None:
    # Adding a variable must not drop the rest of the environment (PATH above all).
    res = runner.run(["sh", "-c", 'test -n "$PATH" && echo ok'], env={"O2_TEST_X": "1"})
    assert res.stdout == "ok\n"


def test_several_megabytes_of_output(runner: Runner) -> None:
    size = 6 * 1024 * 1024
    res = runner.run(["sh", "-c", f"yes 0123456789abcdef | head -c {size}"], timeout=60)
    assert len(res.stdout_bytes) == size
    assert res.stdout_bytes[:34] == b"0123456789abcdef\n0123456789abcdef\n"
    # Both pipes at once, interleaved, must not deadlock either.
    both = runner.run(
        ["sh", "-c", f"head -c {size} /dev/zero; head -c {size} /dev/zero >&2"], timeout=60
    )
    assert len(both.stdout_bytes) == size
    assert len(both.stderr_bytes) == size


def test_several_megabytes_through_stdin(runner: Runner) -> None:
    data = os.urandom(5 * 1024 * 1024)
    res = runner.run(["sha256sum"], input=data, timeout=60)
    assert res.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    echoed = runner.run(["cat"], input=data, timeout=60)
    assert echoed.stdout_bytes == data


def test_missing_program_is_127(runner: Runner) -> None:
    res = runner.run(["o2lab-no-such-program", "arg"], check=False)
    assert res.exit_code == 127
    assert not res.timed_out
    with pytest.raises(CommandFailed) as info:
        runner.run(["o2lab-no-such-program"])
    assert info.value.result.exit_code == 127


def test_hung_command_is_killed_on_the_target(runner: Runner) -> None:
    pidfile = f"/tmp/o2lab-hung-{uuid.uuid4().hex}.pid"
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        runner.run(
            ["sh", "-c", f"echo started; echo $$ > {pidfile}; exec sleep 300"],
            timeout=2,
        )
    elapsed = time.monotonic() - start
    result = info.value.result
    assert result.timed_out
    assert elapsed < 2 + 4, f"took {elapsed:.1f} s to give up"
    assert result.duration >= 1.9
    assert result.stdout == "started\n"  # output captured before the kill is kept
    assert info.value.timeout == 2
    pid = runner.run(["cat", pidfile]).stdout.strip()
    assert pid.isdigit()

    # Alive means `kill -0` succeeds and the process is not a zombie: a killed process
    # whose parent died too waits as a zombie until the target's init reaps it, and the
    # init of this test machine reaps orphans only every few seconds.
    alive = 'kill -0 "$1" 2>/dev/null && ! grep -q "^State:.*Z" "/proc/$1/status"'

    def gone() -> bool:
        return runner.run(["sh", "-c", alive, "sh", pid], check=False).exit_code != 0

    wait_until(gone, what=f"pid {pid} to be gone on {runner.where}", timeout=10, interval=0.1)
    runner.run(["rm", "-f", pidfile])


def test_timeout_without_check_returns_the_result(runner: Runner) -> None:
    res = runner.run(["sleep", "30"], timeout=1, check=False)
    assert res.timed_out and not res.ok
    assert res.duration < 1 + 4
    with pytest.raises(CommandTimeout):
        res.check()


def test_fast_command_with_short_timeout_is_not_timed_out(runner: Runner) -> None:
    res = runner.run(["true"], timeout=0.5)
    assert res.ok and not res.timed_out


@pytest.mark.parametrize(
    ("argv", "timeout"),
    [
        ("echo hi", 10.0),
        (b"echo", 10.0),
        ([], 10.0),
        (["echo", 1], 10.0),
        (["echo", "nul\0byte"], 10.0),
        (["true"], 0.0),
        (["true"], -1.0),
    ],
)
def test_bad_calls_raise_spec_error(runner: Runner, argv: Any, timeout: float) -> None:
    with pytest.raises(SpecError):
        runner.run(argv, timeout=timeout)


def test_bad_env_name_raises_spec_error(runner: Runner) -> None:
    with pytest.raises(SpecError):
        runner.run(["true"], env={"1BAD": "x"})
    with pytest.raises(SpecError):
        runner.run(["true"], env={"A=B": "x"})


def test_results_are_frozen(runner: Runner) -> None:
    res = runner.run(["true"])
    with pytest.raises(AttributeError):
        res.exit_code = 1  # type: ignore[misc]


# -- validation happens before anything runs ----------------------------------------------


def test_bad_calls_fail_before_connecting(tmp_path: Path) -> None:
    # Port 1 on localhost: nothing listens. A SpecError (not a TransportError) shows the
    # call was refused before any connection was tried.
    unreachable = SshRunner(SshTarget(host="127.0.0.1", port=1), tmp_path / "c")
    with pytest.raises(SpecError):
        unreachable.run("true")
    with pytest.raises(SpecError):
        unreachable.run(["true"], timeout=0)
    assert not (tmp_path / "c" / "ctl").exists()
    nowhere = DockerExecRunner(
        docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41"), "x"
    )
    with pytest.raises(SpecError):
        nowhere.run([])
    unreachable.close()


# -- ssh ----------------------------------------------------------------------------------


def test_ssh_reuses_one_connection(throwaway_sshd_server: ThrowawaySshd) -> None:
    before_logins = throwaway_sshd_server.accepted_logins()
    before_conns = throwaway_sshd_server.log_text().count("Connection from")
    with SshRunner(throwaway_sshd_server.target) as runner:
        runner.connect()
        pid = runner.master_pid
        assert pid is not None
        for i in range(10):
            assert runner.run(["echo", str(i)]).stdout == f"{i}\n"
            assert runner.master_pid == pid
        log = throwaway_sshd_server.log_text()
        assert throwaway_sshd_server.accepted_logins() - before_logins == 1
        assert log.count("Connection from") - before_conns == 1
        # Ten sessions over that one connection (LogLevel VERBOSE logs each one).
        assert log.count("Starting session: command") >= 10
    assert not runner._is_our_master(pid)


def test_ssh_starts_a_new_master_when_the_old_one_died(
    throwaway_sshd_server: ThrowawaySshd,
) -> None:
    with SshRunner(throwaway_sshd_server.target) as runner:
        runner.connect()
        old = runner.master_pid
        assert old is not None
        os.kill(old, signal.SIGKILL)  # our own master, by its pid
        wait_until(lambda: not runner._is_our_master(old), what="master dead", timeout=10)
        assert runner.run(["echo", "back"]).stdout == "back\n"
        new = runner.master_pid
        assert new is not None and new != old


def test_ssh_connects_lazily_and_close_is_idempotent(
    throwaway_sshd_server: ThrowawaySshd, tmp_path: Path
) -> None:
    control = Path(f"/tmp/o2t-{uuid.uuid4().hex[:8]}")
    runner = SshRunner(throwaway_sshd_server.target, control)
    assert runner.master_pid is None
    assert runner.run(["echo", "hi"]).stdout == "hi\n"
    pid = runner.master_pid
    assert pid is not None
    runner.close()
    runner.close()
    wait_until(lambda: not runner._is_our_master(pid), what="master gone", timeout=10)
    assert not (control / "ctl").exists()
    with pytest.raises(TransportError):
        runner.run(["true"])
    control.rmdir()


def test_ssh_unreachable_is_transport_error() -> None:
    target = SshTarget(host="127.0.0.1", port=free_port(), connect_timeout=3)
    with SshRunner(target) as runner:
        with pytest.raises(TransportError) as info:
            runner.run(["true"])
        assert "refused" in str(info.value).lower()
        with pytest.raises(WaitTimeout):
            runner.wait_until_reachable(1.0, interval=0.2)


def test_ssh_wrong_host_key_is_refused(
    throwaway_sshd_server: ThrowawaySshd, tmp_path: Path
) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(
        f"[127.0.0.1]:{throwaway_sshd_server.target.port} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    target = SshTarget(
        host="127.0.0.1",
        port=throwaway_sshd_server.target.port,
        user=throwaway_sshd_server.target.user,
        identity_file=throwaway_sshd_server.target.identity_file,
        known_hosts=other,
        strict_host_keys=True,
        connect_timeout=5,
    )
    with SshRunner(target) as runner, pytest.raises(TransportError) as info:
        runner.run(["true"])
    assert "host key" in str(info.value).lower()


def test_ssh_wait_until_reachable(throwaway_sshd_server: ThrowawaySshd) -> None:
    with SshRunner(throwaway_sshd_server.target) as runner:
        runner.wait_until_reachable(10)
        assert runner.master_pid is not None


def test_ssh_command_exit_255_is_not_a_transport_error(ssh_runner: SshRunner) -> None:
    res = ssh_runner.run(["sh", "-c", "exit 255"], check=False)
    assert res.exit_code == 255


def test_ssh_put_and_get_bytes(ssh_runner: SshRunner) -> None:
    path = f"/tmp/o2lab-put-{uuid.uuid4().hex}"
    data = b"\x00binary\xff" * 1000
    ssh_runner.put_bytes(path, data, 0o640)
    try:
        assert ssh_runner.get_bytes(path) == data
        assert ssh_runner.run(["stat", "-c", "%a", path]).stdout.strip() == "640"
    finally:
        ssh_runner.run(["rm", "-f", path])
    with pytest.raises(CommandFailed):
        ssh_runner.get_bytes(path)


def test_ssh_forward_unix_socket_reaches_docker(
    throwaway_sshd_server: ThrowawaySshd, private_engine: PrivateDockerd
) -> None:
    # The "remote" side is this machine: forward a local socket to the private engine's
    # socket and talk to the engine with the docker SDK through the ssh connection.
    with SshRunner(throwaway_sshd_server.target) as runner:
        local = runner.control_dir / "docker.sock"
        assert runner.forward_unix_socket(local, str(private_engine.socket)) == local
        client = docker.DockerClient(base_url=f"unix://{local}", timeout=20)
        try:
            assert client.ping()
            assert client.version()["Version"]
        finally:
            client.close()
    assert not local.exists()


# -- docker -------------------------------------------------------------------------------


def test_docker_missing_container_is_transport_error(private_engine: PrivateDockerd) -> None:
    runner = DockerExecRunner(private_engine.client, "o2lab-no-such-container")
    with pytest.raises(TransportError):
        runner.run(["true"])


def test_docker_stopped_container_is_transport_error(private_engine: PrivateDockerd) -> None:
    container = private_engine.client.containers.create(
        "ocfs2lab-test-busybox:latest", ["sleep", "infinity"], network_mode="none"
    )
    try:
        with pytest.raises(TransportError):
            DockerExecRunner(private_engine.client, str(container.id)).run(["true"])
    finally:
        container.remove(force=True)


def test_docker_engine_unreachable_is_transport_error(tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    with pytest.raises(TransportError):
        DockerExecRunner(client, "x").run(["true"])


def test_docker_user_and_workdir(private_engine: PrivateDockerd, busybox_ctr: Any) -> None:
    runner = DockerExecRunner(private_engine.client, busybox_ctr.name, workdir="/tmp")
    assert runner.run(["pwd"]).stdout == "/tmp\n"
    assert runner.run(["id", "-u"]).stdout == "0\n"  # the container's default user
    assert runner.where == "docker:o2test-contract"
    other = DockerExecRunner(private_engine.client, busybox_ctr.name, user="4321:4321")
    assert other.run(["sh", "-c", "id -u; id -g"]).stdout == "4321\n4321\n"
    assert other.run(["pwd"]).stdout == "/\n"  # no workdir: the container's
