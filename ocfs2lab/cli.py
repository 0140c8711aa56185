"""The ``ocfs2lab`` command line (typer), rendering progress with rich."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from attrs import asdict
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ocfs2lab.cleanup import census, cleanup
from ocfs2lab.cluster import Cluster
from ocfs2lab.coverage import CoverageReport
from ocfs2lab.demo import run_demo
from ocfs2lab.doctor import diagnose
from ocfs2lab.errors import Ocfs2LabError, SpecError
from ocfs2lab.host.base import Host
from ocfs2lab.host.local import LocalHost
from ocfs2lab.host.ssh import SshHost
from ocfs2lab.runner.ssh import SshTarget
from ocfs2lab.spec.storage import DrbdSpec
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.qemu import reap_stale_machines
from ocfs2lab.vm.recipe import ImageRecipe
from ocfs2lab.vm.switch import reap_stale_switches

app = typer.Typer(help="Build OCFS2 cluster labs and run failure experiments on them.")
image_app = typer.Typer(help="The lab image.")
coverage_app = typer.Typer(help="Coverage reports (gcov of the lab kernel and tools).")
app.add_typer(image_app, name="image")
app.add_typer(coverage_app, name="coverage")
console = Console(stderr=True)


class RichReporter:
    """Renders the library's progress phases as rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.durations: dict[str, float] = {}

    def phase_started(self, name: str, total: float | None = None) -> None:
        """Show a new phase."""
        self.tasks[name] = self.progress.add_task(name, total=total)

    def advance(self, name: str, done: float, message: str = "") -> None:
        """Move a phase's bar."""
        task = self.tasks.get(name)
        if task is not None:
            label = f"{name}: {message}" if message else name
            self.progress.update(task, completed=done, description=label[:70])

    def phase_ended(self, name: str, seconds: float, ok: bool) -> None:
        """Mark a phase done (or failed) with its duration."""
        self.durations[name] = self.durations.get(name, 0.0) + seconds
        task = self.tasks.pop(name, None)
        if task is not None:
            mark = "[green]ok[/]" if ok else "[red]failed[/]"
            self.progress.update(
                task, description=f"{name} {mark} ({seconds:.1f} s)", total=1, completed=1
            )


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _fail(err: Ocfs2LabError) -> None:
    console.print(f"[red]error:[/] {err}")
    raise typer.Exit(1)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log library details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@image_app.command("build")
def image_build(
    release: Annotated[str, typer.Option(help="Debian release of the guest.")] = "trixie",
    debian_kernel: Annotated[
        bool,
        typer.Option(
            "--debian-kernel",
            help="Boot Debian's packaged kernel instead of the lab's own (no coverage).",
        ),
    ] = False,
) -> None:
    """Build the lab image (and the lab kernel, with gcov), or reuse the cached ones."""
    with _progress() as progress:
        reporter = RichReporter(progress)
        try:
            recipe = (
                ImageRecipe(release=release, kernel=None)
                if debian_kernel
                else ImageRecipe(release=release)
            )
            image = build_image(recipe, reporter=reporter)
        except Ocfs2LabError as err:
            _fail(err)
    console.print(f"lab image: {image.root_disk}")
    if image.recipe.kernel is not None:
        console.print(
            f"lab kernel: {image.kernel} (gcov of {', '.join(image.recipe.kernel.gcov_dirs)})"
        )


@coverage_app.command("show")
def coverage_show(
    report: Annotated[Path, typer.Argument(help="A report directory (gcov_reports_...).")],
    top: Annotated[int, typer.Option(help="Files to list per report, most lines first.")] = 15,
) -> None:
    """Print a coverage report's summary: totals and the files with most lines covered."""
    try:
        loaded = CoverageReport.load(report)
    except Ocfs2LabError as err:
        _fail(err)
    for name, summary in loaded.summaries.items():
        table = Table(title=f"{name} ({', '.join(loaded.targets.get(name, ()))})")
        for column in ("file", "lines", "lines %", "functions %", "branches %"):
            table.add_column(column, justify="left" if column == "file" else "right")
        ranked = sorted(summary.files, key=lambda f: -f.lines_covered)[:top]
        for f in [*ranked, summary.total]:
            table.add_row(
                f.path,
                f"{f.lines_covered}/{f.lines_total}",
                f"{f.lines_percent}",
                f"{f.functions_percent}",
                f"{f.branches_percent}",
            )
        console.print(table)
        if loaded.has_html(name):
            console.print(f"HTML: {loaded.html(name)}")
        else:
            console.print("HTML: none (the report was made with html=False)")
    console.print(loaded.one_line())


@coverage_app.command("diff")
def coverage_diff(
    a: Annotated[Path, typer.Argument(help="Report directory of run A.")],
    b: Annotated[Path, typer.Argument(help="Report directory of run B.")],
    name: Annotated[str, typer.Option(help="Which report: kernel, tools, ...")] = "kernel",
    limit: Annotated[int, typer.Option(help="Files to list on each side.")] = 20,
) -> None:
    """Which lines run A reached that run B did not, and the reverse."""
    try:
        diff = CoverageReport.load(a).diff(CoverageReport.load(b), name)
    except Ocfs2LabError as err:
        _fail(err)
    except FileNotFoundError as err:
        console.print(f"[red]no {name} report: {err}[/red]")
        raise typer.Exit(2) from err
    console.print(diff.render(limit=limit), highlight=False)


@app.command()
def demo(
    log_dir: Annotated[
        Path | None, typer.Option(help="Keep the lab's console logs in this folder.")
    ] = None,
    vm_nodes: Annotated[
        int, typer.Option(help="VMs of the kill experiment (0 skips it).", min=0, max=16)
    ] = 3,
) -> None:
    """The main job: build or reuse the lab image, boot the lab, deploy the seed's cluster,
    kill a node of a VM cluster and report its recovery, tear down."""
    started = time.monotonic()
    with _progress() as progress:
        reporter = RichReporter(progress)
        try:
            report = run_demo(reporter=reporter, log_dir=log_dir, vm_nodes=vm_nodes)
        except Ocfs2LabError as err:
            _fail(err)
    table = Table(title="ocfs2lab demo")
    table.add_column("what")
    table.add_column("result")
    for key, value in report.items():
        table.add_row(key, str(value))
    for name, seconds in reporter.durations.items():
        table.add_row(f"time: {name}", f"{seconds:.1f} s")
    table.add_row("time: total", f"{time.monotonic() - started:.1f} s")
    Console().print(table)


_STATUS_STYLE = {"ok": "green", "warn": "yellow", "missing": "red", "error": "bold red"}


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check this machine: QEMU, KVM, image tools, disk space, the image cache, Docker, the
    host kernel's OCFS2 and DRBD, Python extras; for each gap, what it means and the fix.

    Exits 1 when a piece is missing or broken, 0 otherwise (warnings included).
    """
    report = diagnose()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
    else:
        table = Table(title="ocfs2lab doctor", show_lines=True)
        for column in ("check", "status", "found", "meaning", "fix"):
            table.add_column(column, overflow="fold")
        for check in report.checks:
            style = _STATUS_STYLE.get(check.status, "")
            table.add_row(
                Text(check.name),
                Text(check.status, style=style),
                Text(check.found),
                Text(check.meaning),
                Text(check.fix or "-"),
            )
        console.print(table)
        failing = report.failing
        if failing:
            console.print(f"[red]not ready:[/] {', '.join(c.name for c in failing)}")
        else:
            console.print("[green]ready[/] (warnings say what is slower or optional)")
    raise typer.Exit(0 if report.ok else 1)


SshOption = Annotated[
    str | None,
    typer.Option("--ssh", help="The host as user@address[:port]; this machine when omitted."),
]
KeyOption = Annotated[Path | None, typer.Option("--key", help="SSH private key for --ssh.")]


def _host(ssh: str | None, key: Path | None) -> Host:
    if ssh is None:
        return LocalHost()
    user, _, rest = ssh.rpartition("@")
    address, _, port = rest.partition(":")
    if not address:
        raise SpecError("--ssh", ssh, "must look like root@192.0.2.10 or root@127.0.0.1:2222")
    try:
        port_no = int(port or 22)
    except ValueError as err:
        raise SpecError("--ssh", ssh, "the port must be a number") from err
    target = SshTarget(address, port_no, user=user or "root", identity_file=key)
    return SshHost(target)


@app.command()
def up(
    ssh: SshOption = None,
    key: KeyOption = None,
    nodes: Annotated[int, typer.Option(help="Number of node containers.")] = 3,
    name: Annotated[str, typer.Option(help="Cluster name.")] = "ocfs2cluster",
    size: Annotated[str, typer.Option(help="Size of the DRBD backing file.")] = "4G",
    lab_id: Annotated[str | None, typer.Option(help="Lab id (a fresh one by default).")] = None,
) -> None:
    """Deploy the seed's cluster on a host and leave it running (undo with `down`)."""
    try:
        host = _host(ssh, key)
        with _progress() as progress:
            cluster = Cluster(
                host,
                nodes,
                name=name,
                drbd=DrbdSpec(size=size),
                lab_id=lab_id,
                reporter=RichReporter(progress),
            )
            cluster.__enter__()  # left running on purpose: `down` removes it
        Console().print(f"lab {cluster.lab_id} is up: {cluster.status()}")
    except Ocfs2LabError as err:
        _fail(err)


@app.command()
def status(
    ssh: SshOption = None,
    key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What labs left on a host: containers, networks, DRBD, loop devices, mounts, modules."""
    try:
        host = _host(ssh, key)
        found = census(host, host.docker())
    except Ocfs2LabError as err:
        _fail(err)
    if as_json:
        typer.echo(json.dumps(asdict(found), indent=1))
        return
    table = Table(title=f"labs on {host.name}")
    table.add_column("kind")
    table.add_column("found")
    for kind, value in asdict(found).items():
        table.add_row(kind, str(value) if value else "-")
    Console().print(table)


@app.command()
def down(
    lab: Annotated[str, typer.Option("--lab", help="The lab id that `up` printed.")],
    ssh: SshOption = None,
    key: KeyOption = None,
) -> None:
    """Remove one lab from a host."""
    try:
        host = _host(ssh, key)
        removed = cleanup(host, host.docker(), lab_id=lab)
    except Ocfs2LabError as err:
        _fail(err)
    console.print(f"removed: {', '.join(removed) or 'nothing'}")


@app.command("cleanup")
def cleanup_command(ssh: SshOption = None, key: KeyOption = None) -> None:
    """Remove everything any lab created on a host (found by labels and ledgers), and
    nothing else; works after a deploy was killed half way."""
    try:
        host = _host(ssh, key)
        removed = cleanup(host, host.docker())
    except Ocfs2LabError as err:
        _fail(err)
    console.print(f"removed: {', '.join(removed) or 'nothing'}")


@app.command()
def reap() -> None:
    """Remove the lab VMs, VM clusters and switches on this machine whose owning process
    died (killed, crashed): their QEMU and vde_switch processes (by recorded pid and start
    time) and their files. Those of running owners are left alone."""
    machines = reap_stale_machines()
    switches = reap_stale_switches()
    for path in [*machines, *switches]:
        console.print(f"removed {path}")
    console.print(f"reaped: {len(machines)} run directories, {len(switches)} switches")


def main() -> None:
    """Entry point of the ``ocfs2lab`` command."""
    app()


if __name__ == "__main__":
    main()
