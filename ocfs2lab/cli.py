"""The ``ocfs2lab`` command line (typer), rendering progress with rich."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import attrs
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
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ocfs2lab.cleanup import census, cleanup
from ocfs2lab.clusters import Cluster, VmCluster
from ocfs2lab.coverage import CoverageReport
from ocfs2lab.demo import run_demo
from ocfs2lab.doctor import Check, diagnose
from ocfs2lab.errors import KernelBuildError, Ocfs2LabError, SpecError
from ocfs2lab.experiment.criteria import failing, medians, parse_criteria
from ocfs2lab.experiment.faults import FAULTS, FaultName
from ocfs2lab.experiment.recovery import FIGURES, RecoveryExperiment
from ocfs2lab.host.base import Host
from ocfs2lab.host.local import LocalHost
from ocfs2lab.host.ssh import SshHost
from ocfs2lab.kernel_ab import compare_kernels, compare_stacks
from ocfs2lab.runner.ssh import SshTarget
from ocfs2lab.spec.cluster import TimingSpec
from ocfs2lab.spec.stack import check_stack
from ocfs2lab.spec.storage import DrbdSpec
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.inventory import cache_entries, disk_usage, prune_cache
from ocfs2lab.vm.qemu import reap_stale_machines
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe, cache_root
from ocfs2lab.vm.switch import reap_stale_switches


def _plain_params(params: list[Any]) -> list[Any]:
    """Flags take no value: show no type for them (typer would show ``<bool>``)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


def _usage_pieces(command: TyperCommand | TyperGroup, ctx: Any) -> list[str]:
    """``[OPTIONS] REPORT``: arguments by their upper-case name, ``[NAME]`` when optional
    (typer would write a required one as ``{report}``)."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            name = (param.metavar or param.name or "arg").upper()
            name = name if param.required else f"[{name}]"
            pieces.append(name if param.nargs == 1 else f"{name}...")
        else:
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


class _Command(TyperCommand):
    """A command whose help shows plain usage and no type for flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_params(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage_pieces(self, ctx)


class _Group(TyperGroup):
    """A group of commands, helped like `_Command`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_params(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*_usage_pieces(self, ctx), self.subcommand_metavar]


# Markdown: help texts are docstrings wrapped at 100 columns; Markdown joins their lines
# (rich mode would keep the breaks in the command lists) and shows `code` as code.
_HELP: dict[str, Any] = {"cls": _Group, "rich_markup_mode": "markdown"}
log = logging.getLogger(__name__)
app = typer.Typer(help="Build OCFS2 cluster labs and run failure experiments on them.", **_HELP)
image_app = typer.Typer(help="The lab image.", **_HELP)
coverage_app = typer.Typer(help="Coverage reports (gcov of the lab kernel and tools).", **_HELP)
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


class LineReporter:
    """Renders the library's progress phases as plain lines, for output that is not a
    terminal (CI logs, pipes): each phase's start and end at once, and within a phase a
    line of progress every ``interval`` seconds."""

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self.durations: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def _line(self, text: str) -> None:
        console.print(Text(text), soft_wrap=True)
        console.file.flush()

    def phase_started(self, name: str, total: float | None = None) -> None:
        """Print the phase's start."""
        self._last[name] = time.monotonic()
        self._line(f"{name} ...")

    def advance(self, name: str, done: float, message: str = "") -> None:
        """Print how far the phase is, at most once per ``interval``."""
        now = time.monotonic()
        if now - self._last.get(name, 0.0) >= self.interval:
            self._last[name] = now
            self._line(f"{name}: {message or done}")

    def phase_ended(self, name: str, seconds: float, ok: bool) -> None:
        """Print the phase's end and keep its duration."""
        self.durations[name] = self.durations.get(name, 0.0) + seconds
        self._last.pop(name, None)
        self._line(f"{name} {'ok' if ok else 'failed'} ({seconds:.1f} s)")


@contextlib.contextmanager
def _reporting() -> Iterator[RichReporter | LineReporter]:
    """Progress bars on a terminal, plain lines otherwise."""
    if not console.is_terminal:
        yield LineReporter()
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        yield RichReporter(progress)


def _error(err: Ocfs2LabError) -> None:
    """Print an error whole: no markup read from its text, no wrapping (scripts grep it)."""
    console.print(Text("error: ", style="red") + Text(str(err)), soft_wrap=True)


def _fail(err: Ocfs2LabError) -> None:
    _error(err)
    raise typer.Exit(1)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log library details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


PatchOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--patch",
        metavar="<file>",
        help="A unified diff or git format-patch file applied to the kernel source "
        "(repeatable, applied in order).",
    ),
]
TreeOption = Annotated[
    Path | None,
    typer.Option(
        metavar="<dir>",
        help="Your Linux git checkout, built instead of Debian's source (only read).",
    ),
]
ConfigOption = Annotated[
    list[str] | None,
    typer.Option(
        "--config", metavar="<line>", help="An extra kernel config line, CONFIG_X=y (repeatable)."
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(help="A named set of config lines: debug (lockdep, DLM and OCFS2 debug)."),
]


def _kernel_recipe(
    patch: list[Path] | None,
    tree: Path | None,
    config: list[str] | None,
    profile: str | None,
    release: str = "trixie",
) -> KernelRecipe:
    base = KernelRecipe.for_release(release)
    return attrs.evolve(
        base, patches=tuple(patch or ()), tree=tree, config=tuple(config or ()), profile=profile
    )


@image_app.command("build", cls=_Command)
def image_build(
    release: Annotated[str, typer.Option(help="Debian release of the guest.")] = "trixie",
    debian_kernel: Annotated[
        bool,
        typer.Option(
            "--debian-kernel",
            help="Boot Debian's packaged kernel instead of the lab's own (no coverage).",
        ),
    ] = False,
    patch: PatchOption = None,
    tree: TreeOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """Build the lab image and the lab kernel (gcov; your patches or tree), or reuse them."""
    with _reporting() as reporter:
        try:
            recipe = (
                ImageRecipe(release=release, kernel=None)
                if debian_kernel
                else ImageRecipe(
                    release=release, kernel=_kernel_recipe(patch, tree, config, profile, release)
                )
            )
            image = build_image(recipe, reporter=reporter)
        except Ocfs2LabError as err:
            _fail(err)
    console.print(f"lab image: {image.root_disk}")
    if image.recipe.kernel is not None:
        console.print(
            f"lab kernel: {image.kernel} (gcov of {', '.join(image.recipe.kernel.gcov_dirs)})"
        )
        info = image.kernel_provenance
        console.print(f"kernel {info.get('release')} key {str(info.get('key', ''))[:16]}")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else "-"


@image_app.command("list", cls=_Command)
def image_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The cached images, kernels, work trees and sources, with sizes and last use."""
    entries = cache_entries()
    if as_json:
        typer.echo(
            json.dumps([{**asdict(e), "path": str(e.path)} for e in entries], indent=1, default=str)
        )
        return
    table = Table(title=f"ocfs2lab cache ({cache_root()})")
    for column in ("kind", "name", "size", "its own", "last used", "state", "what"):
        table.add_column(column, overflow="fold")
    for e in entries:
        state = "in use" if e.in_use else ("default" if e.protected else "")
        table.add_row(
            e.kind,
            e.name,
            _size(e.size_bytes),
            _size(e.own_bytes),
            _when(e.last_used),
            state,
            e.detail,
        )
    total = disk_usage(cache_root())
    table.caption = (
        f"{len(entries)} entries, {_size(total)} in all; 'its own': what removing it frees "
        "(files hard-linked to another entry stay)"
    )
    Console().print(table)


@image_app.command("prune", cls=_Command)
def image_prune(
    older_than: Annotated[
        float | None, typer.Option(help="Remove what was last used more than DAYS ago.")
    ] = None,
    keep: Annotated[
        int | None, typer.Option(help="Keep the N most recently used of each kind.", min=0)
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Remove unused cache entries, by age (--older-than DAYS) or count (--keep N).

    What a running lab uses and what the default recipe boots are never removed.
    """
    try:
        removed = prune_cache(
            older_than=None if older_than is None else older_than * 86400.0,
            keep=keep,
            dry_run=dry_run,
        )
    except Ocfs2LabError as err:
        _fail(err)
    verb = "would remove" if dry_run else "removed"
    for e in removed:
        typer.echo(f"{verb} {e.kind} {e.name} ({_size(e.own_bytes)} its own)")
    freed = sum(e.own_bytes for e in removed)
    typer.echo(f"{verb} {len(removed)} entries, {_size(freed)}")


@coverage_app.command("show", cls=_Command)
def coverage_show(
    report: Annotated[
        Path,
        typer.Argument(
            metavar="REPORT_DIR",
            help="A report directory (gcov_reports_...), or a folder whose coverage/ "
            "subfolder holds one (examples/vm_kill.py's output).",
        ),
    ],
    top: Annotated[int, typer.Option(help="Files to list per report, most lines first.")] = 15,
) -> None:
    """Print a coverage report's summary: totals and the files with most lines covered."""
    try:
        loaded = CoverageReport.load(report)
    except Ocfs2LabError as err:
        _fail(err)
    out = Console()  # the summary is the output: stdout, to redirect
    out.print(Text(f"report: {loaded.directory}"), soft_wrap=True)
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
        out.print(table)
        if loaded.has_html(name):
            out.print(Text(f"HTML: {loaded.html(name)}"), soft_wrap=True)
        else:
            out.print("HTML: none (the report was made with html=False)")
    out.print(Text(loaded.one_line()), soft_wrap=True)


@coverage_app.command("diff", cls=_Command)
def coverage_diff(
    a: Annotated[
        Path, typer.Argument(metavar="REPORT_A", help="Report directory of run A (or its parent).")
    ],
    b: Annotated[
        Path, typer.Argument(metavar="REPORT_B", help="Report directory of run B (or its parent).")
    ],
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
    Console().print(Text(diff.render(limit=limit)), soft_wrap=True)  # stdout, to redirect


@app.command(cls=_Command)
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
    with _reporting() as reporter:
        try:
            report = run_demo(reporter=reporter, log_dir=log_dir, vm_nodes=vm_nodes)
        except Ocfs2LabError as err:
            _fail(err)
    print_demo_report(Console(), report, reporter.durations, time.monotonic() - started)


def print_demo_report(
    out: Console,
    report: Mapping[str, object],
    durations: Mapping[str, float],
    total: float,
) -> None:
    """The main job's table (what was found, the figures, the time of every phase), then the
    files it wrote, each path whole on a line of its own: a narrow terminal folds long
    values in the table and never cuts them short, and a path stays whole to copy."""
    table = Table(title="ocfs2lab demo")
    table.add_column("what", overflow="fold")
    table.add_column("result", overflow="fold")
    files: list[tuple[str, Path]] = []
    for key, value in report.items():
        if isinstance(value, Path):
            files.append((key, value))
        else:
            table.add_row(key, str(value))
    for name, seconds in durations.items():
        table.add_row(f"time: {name}", f"{seconds:.1f} s")
    table.add_row("time: total", f"{total:.1f} s")
    out.print(table)
    if files:
        out.print("Files written:")
        for key, path in files:
            out.print(Text(f"  {key}: {path}"), soft_wrap=True)


#: Exit status of ``ocfs2lab experiment`` when the kernel cannot be built: ``git bisect
#: run`` skips such a commit.
EXIT_UNTESTABLE = 125
#: Exit status when the lab itself failed: ``git bisect run`` stops.
EXIT_LAB_ERROR = 128


@app.command(cls=_Command)
def experiment(
    fault: Annotated[
        str, typer.Option(help="The fault: kill, freeze, partition or disk_stall.")
    ] = "kill",
    victim: Annotated[int, typer.Option(help="The node to fault (-1: the last).")] = -1,
    nodes: Annotated[int, typer.Option(help="VM nodes.", min=2, max=16)] = 3,
    repeat: Annotated[int, typer.Option(help="Runs (per kernel).", min=1)] = 3,
    dead_threshold: Annotated[
        int, typer.Option(help="o2hb dead threshold (2 s heartbeats).", min=3)
    ] = 7,
    idle_timeout_ms: Annotated[int, typer.Option(help="o2net idle timeout.")] = 10000,
    patch: PatchOption = None,
    tree: TreeOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare", help="Also run the unpatched base kernel, interleaved, and compare."
        ),
    ] = False,
    stack: Annotated[
        str, typer.Option(help="The cluster stack: o2cb, or pcmk (corosync + fs/dlm).")
    ] = "o2cb",
    compare_stacks_: Annotated[
        bool,
        typer.Option(
            "--compare-stacks",
            help="Run o2cb and pcmk on the kernel given, interleaved, and compare.",
        ),
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder for the JSON (and the plot).")] = Path(
        "experiment-results"
    ),
    fail_if: Annotated[
        str | None,
        typer.Option(
            help="Exit 1 when the tested kernel's median meets this, e.g. "
            "'recovery_end_s > 20' (for git bisect run).",
        ),
    ] = None,
) -> None:
    """Run a recovery experiment on a VM cluster of the kernel you give, print its figures
    and write them as JSON; with --compare, against the base kernel, with statistics.

    Exit status: 0, or 1 when --fail-if holds; 125 when the kernel cannot be built (git
    bisect skips the commit); 128 when the lab failed (git bisect stops).
    """
    if fault not in FAULTS:
        _fail(SpecError("fault", fault, f"must be one of {', '.join(FAULTS)}"))
    fault_name = cast(FaultName, fault)
    if compare and compare_stacks_:
        _fail(SpecError("compare", True, "compare kernels or stacks, not both at once"))
    try:
        stack_name = check_stack(stack)
        criteria = parse_criteria(fail_if, (*FIGURES, "lost_writes")) if fail_if else ()
        recipe = _kernel_recipe(patch, tree, config, profile)
        timing = TimingSpec(dead_threshold=dead_threshold, idle_timeout_ms=idle_timeout_ms)
    except SpecError as err:
        _fail(err)
    out.mkdir(parents=True, exist_ok=True)
    tested = "patched" if (patch or tree or config or profile) else "kernel"
    with _reporting() as reporter:
        try:
            if compare:
                comparison = compare_kernels(
                    {"base": KernelRecipe(), tested: recipe},
                    nodes=nodes,
                    fault=fault_name,
                    victim=victim,
                    repeat=repeat,
                    timing=timing,
                    reporter=reporter,
                    stack=stack_name,
                )
                rows = [r for r in comparison.rows if r["arm"] == tested]
                result: dict[str, object] = comparison.to_json()
                comparison.plot().savefig(out / "comparison.png")
                text = comparison.summary()
            elif compare_stacks_:
                comparison = compare_stacks(
                    nodes=nodes,
                    fault=fault_name,
                    victim=victim,
                    repeat=repeat,
                    timing=timing,
                    image=build_image(ImageRecipe(kernel=recipe), reporter=reporter),
                    reporter=reporter,
                )
                rows = [r for r in comparison.rows if r["arm"] == "pcmk"]
                result = comparison.to_json()
                comparison.plot().savefig(out / "comparison.png")
                text = comparison.summary()
            else:
                image = build_image(ImageRecipe(kernel=recipe), reporter=reporter)
                with VmCluster(
                    nodes, timing=timing, image=image, reporter=reporter, stack=stack_name
                ) as cluster:
                    series = RecoveryExperiment(
                        cluster,
                        fault=fault_name,
                        victim=victim,
                    ).run(repeat)
                rows = series.rows()
                result = {
                    "provenance": image.kernel_provenance,
                    "rows": rows,
                    "stats": series.stats(),
                }
                text = "\n".join(r.summary() for r in series.reports)
        except KernelBuildError as err:
            _error(err)
            raise typer.Exit(EXIT_UNTESTABLE) from err
        except Ocfs2LabError as err:
            _error(err)
            raise typer.Exit(EXIT_LAB_ERROR) from err
    (out / "experiment.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    typer.echo(text)
    typer.echo(f"results: {out / 'experiment.json'}")
    hits = failing(criteria, medians(rows))
    for criterion, value in hits:
        typer.echo(f"fail-if: {criterion} holds (median {value})")
    if hits:
        raise typer.Exit(1)


_STATUS_STYLE = {"ok": "green", "warn": "yellow", "missing": "red", "error": "bold red"}


@app.command(cls=_Command)
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
        console.print(doctor_table(report.checks))
        failing = report.failing
        if failing:
            console.print(f"[red]not ready:[/] {', '.join(c.name for c in failing)}")
        else:
            console.print("[green]ready[/] (warnings say what is slower or optional)")
    raise typer.Exit(0 if report.ok else 1)


def doctor_table(checks: Sequence[Check]) -> Table:
    """Doctor's table: one row per check; its name and status, then what was found, what it
    means and the fix, one under the other, so the text has the width a terminal has (five
    columns side by side broke words at 80 columns)."""
    table = Table(title="ocfs2lab doctor", show_lines=True)
    width = max((len(c.name) for c in checks), default=5)
    table.add_column("check", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True)
    table.add_column("found / meaning / fix", overflow="fold", ratio=1)
    for check in checks:
        details = Text(check.found)
        details.append("\n" + check.meaning, style="dim")
        if check.fix:
            details.append("\nfix: " + check.fix, style="bold")
        table.add_row(
            Text(check.name), Text(check.status, style=_STATUS_STYLE.get(check.status, "")), details
        )
    return table


SshOption = Annotated[
    str | None,
    typer.Option("--ssh", help="The host as user@address[:port]; this machine when omitted."),
]
KeyOption = Annotated[Path | None, typer.Option("--key", help="SSH private key for --ssh.")]
SshTargetsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ssh",
        metavar="USER@ADDRESS[:PORT]",
        help="A machine; give --ssh once per machine (the nodes of an SSH cluster); this "
        "machine when omitted.",
    ),
]
TargetsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--targets",
        metavar="FILE",
        help="A file listing machines, one user@address[:port] per line (# comments).",
    ),
]


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


@app.command(cls=_Command)
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
        with _reporting() as reporter:
            cluster = Cluster(
                host,
                nodes,
                name=name,
                drbd=DrbdSpec(size=size),
                lab_id=lab_id,
                reporter=reporter,
            )
            cluster.start(close_at_exit=False)  # left running on purpose: `down` removes it
        Console().print(f"lab {cluster.lab_id} is up: {cluster.status()}")
    except Ocfs2LabError as err:
        _fail(err)


def _hosts(ssh: list[str] | None, targets: Path | None, key: Path | None) -> list[Host]:
    """The hosts named by ``--ssh`` (any number) and ``--targets``; this machine if none."""
    names = list(ssh or [])
    if targets is not None:
        try:
            lines = targets.read_text().splitlines()
        except OSError as err:
            raise SpecError("--targets", str(targets), f"cannot be read: {err}") from err
        names += [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]
    if not names:
        return [_host(None, key)]
    return [_host(name, key) for name in names]


def _docker_of(host: Host) -> Any:
    """The host's Docker client where an engine runs, else ``None`` (an SSH node without a
    running engine holds no lab container; reaching its socket would start one)."""
    if not host.run(["sh", "-c", "pidof dockerd >/dev/null"], check=False, timeout=30).ok:
        log.info("%s: no Docker engine runs: containers are not looked for", host.name)
        return None
    try:
        return host.docker()
    except Ocfs2LabError as err:
        log.info("%s: no Docker engine (%s): containers are not looked for", host.name, err)
        return None


@app.command(cls=_Command)
def status(
    ssh: SshTargetsOption = None,
    targets: TargetsFileOption = None,
    key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What labs left on hosts (containers, networks, ledgers and what they list, DRBD,
    loop devices, mounts, modules) and the lab machines on this machine (live, and stale
    ones whose owner died)."""
    try:
        found = {host.name: census(host, _docker_of(host)) for host in _hosts(ssh, targets, key)}
    except Ocfs2LabError as err:
        _fail(err)
    if as_json:
        typer.echo(json.dumps({name: asdict(c) for name, c in found.items()}, indent=1))
        return
    for name, one in found.items():
        table = Table(title=f"labs on {name}")
        table.add_column("kind")
        table.add_column("found")
        for kind, value in asdict(one).items():
            table.add_row(kind, str(value) if value else "-")
        Console().print(table)


@app.command(cls=_Command)
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


@app.command("cleanup", cls=_Command)
def cleanup_command(
    ssh: SshTargetsOption = None, targets: TargetsFileOption = None, key: KeyOption = None
) -> None:
    """Remove everything any lab created on hosts (found by labels and ledgers: files back
    as they were, mounts, modules, registrations) and the lab machines on this machine whose
    owner died, and nothing else; works after a deploy was killed half way. Every host is
    tried even when one fails."""
    failed: list[str] = []
    try:
        hosts = _hosts(ssh, targets, key)
    except Ocfs2LabError as err:
        _fail(err)
    for k, host in enumerate(hosts):
        try:
            removed = cleanup(host, _docker_of(host), machines=k == 0)
        except Ocfs2LabError as err:
            failed.append(f"{host.name}: {err}")
            continue
        console.print(f"{host.name}: removed: {', '.join(removed) or 'nothing'}")
    if failed:
        _fail(Ocfs2LabError("cleanup left things: " + "; ".join(failed)))


@app.command(cls=_Command)
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
