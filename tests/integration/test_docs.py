"""The documentation: the site builds strictly, and every code block in the guide is checked.

* ``mkdocs build --strict`` of the whole site, run through LocalRunner: a docstring the
  reference cannot render, a missing snippet or section, a page left out of the navigation or
  a dangling link fails the build. Every name of ``ocfs2lab.__all__`` must have its entry in
  the API reference.
* Every fenced block under ``docs/`` is one of:

  - a snippet block: only ``--8<-- "examples/<script>.py:<section>"`` lines, a literal
    excerpt of an example script, taken from the file when the site is built; the script
    and the section must exist, and the built page must show the excerpt;
  - ``pycon``: run with doctest, in page order, and its output compared;
  - ``python``: run, in page order, in the page's namespace (shared with its pycon blocks);
  - ``sh``: each command line names something that exists: ``ocfs2lab <subcommand>`` (whose
    ``--help`` exits 0 and lists every option shown), a script of the repository run by
    ``bash``, or a program of the virtual environment whose file arguments exist.

  Any other block fails. Blocks that are run must not reach a machine: entering a live handle
  (a lab VM, a cluster) or running a command from one fails the block; what needs a machine
  belongs in an example script, shown as a snippet.
"""

from __future__ import annotations

import doctest
import html
import importlib
import inspect
import json
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from attrs import frozen

import ocfs2lab
from ocfs2lab.host.base import Machine
from ocfs2lab.host.local import LocalHost
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.runner.base import CommandResult
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.ssh import SshRunner

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
BIN = Path(sys.executable).parent
MKDOCS = BIN / "mkdocs"
OCFS2LAB = BIN / "ocfs2lab"
#: Where snippets may come from: the example scripts.
SNIPPET_ROOT = "examples/"
RUN_LANGS = {"python", "pycon"}
SHELL_LANGS = {"sh", "bash", "shell"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*).*$")
_SNIPPET = re.compile(r'^--8<--[ \t]+"(?P<target>[^"]+)"[ \t]*$')


@frozen
class Block:
    """One fenced block of a page: its language and text, from its opening line to ``end``."""

    page: str
    line: int
    end: int
    lang: str
    text: str
    root: str = "docs/"

    @property
    def where(self) -> str:
        return f"{self.root}{self.page}:{self.line}"

    def snippet_targets(self) -> list[str] | None:
        """The ``--8<--`` targets when the block holds only snippet lines, else None."""
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        found = [_SNIPPET.match(ln) for ln in lines]
        if not lines or not all(found):
            return None
        return [m.group("target") for m in found if m is not None]


def parse_blocks(page: str, text: str, root: str = "docs/") -> list[Block]:
    """The fenced blocks of a Markdown page, each dedented by its fence's indentation.

    A fence that never closes runs to the end of the page, as in Markdown.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, lang = m.group("indent"), m.group("fence"), m.group("lang").lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                break
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        blocks.append(Block(page, i + 1, j + 1, lang, "\n".join(body) + "\n", root))
        i = j + 1
    return blocks


def outside_blocks(page: str, text: str) -> str:
    """The page without its fenced blocks."""
    inside = {n for b in parse_blocks(page, text) for n in range(b.line, b.end + 1)}
    return "\n".join(ln for n, ln in enumerate(text.splitlines(), 1) if n not in inside)


def pages() -> dict[str, str]:
    return {str(p.relative_to(DOCS)): p.read_text() for p in sorted(DOCS.rglob("*.md"))}


PAGES = pages()
BLOCKS = [b for page, text in PAGES.items() for b in parse_blocks(page, text)]
SNIPPET_BLOCKS = [b for b in BLOCKS if b.snippet_targets() is not None]
RUN_PAGES = sorted({b.page for b in BLOCKS if b.lang in RUN_LANGS and b.snippet_targets() is None})
README = ROOT / "README.md"
#: The README's blocks: its shell lines are checked like the guide's, its Python is compiled
#: (it reaches machines, so it is not run), and the names it mentions must exist.
README_BLOCKS = parse_blocks("README.md", README.read_text(), root="")
SHELL_LINES = [
    (b, line.strip())
    for b in [*BLOCKS, *README_BLOCKS]
    if b.lang in SHELL_LANGS and b.snippet_targets() is None
    for line in b.text.splitlines()
    if shlex.split(line, comments=True)
]


def built_page(site: Path, page: str) -> Path:
    """The HTML file mkdocs makes of ``docs/<page>``."""
    stem = page.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site / stem.removesuffix("index") / "index.html"
    return site / stem / "index.html"


def page_text(path: Path) -> str:
    """The text of a built page, tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


# -- the site ---------------------------------------------------------------------------


@frozen
class Build:
    """One ``mkdocs build --strict`` of the site."""

    site: Path
    result: CommandResult


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The site, built once per module with ``--strict`` (failed or not)."""
    assert MKDOCS.exists(), f"{MKDOCS} is missing: install the dev extra (pip install -e '.[dev]')"
    out = tmp_path_factory.mktemp("site")
    with LocalRunner() as runner:
        result = runner.run(
            [
                str(MKDOCS),
                "build",
                "--strict",
                "--config-file",
                str(CONFIG),
                "--site-dir",
                str(out),
            ],
            check=False,
            timeout=900,
            env={"NO_MKDOCS_2_WARNING": "1"},
        )
    return Build(out, result)


@pytest.fixture
def site(build: Build) -> Path:
    """The built site; tests that read it fail at once when the build failed."""
    if not build.result.ok:
        pytest.fail("the site did not build: see test_site_builds_strictly", pytrace=False)
    return build.site


def test_site_builds_strictly(build: Build) -> None:
    result = build.result
    assert result.ok, f"mkdocs build --strict failed ({result.exit_code}):\n{result.stderr}"
    assert (build.site / "index.html").exists()
    for page in PAGES:
        assert built_page(build.site, page).exists(), page


def test_every_code_block_of_the_guide_is_checked(site: Path) -> None:
    """The built guide shows no code block that the checks here did not see (an indented
    code block, say): one ``<pre>`` per fenced block."""
    for page, text in PAGES.items():
        if page.startswith("reference/"):
            continue  # signatures, rendered from the docstrings
        shown = built_page(site, page).read_text().count("<pre")
        assert shown == len(parse_blocks(page, text)), f"docs/{page}: a code block not fenced"


def reference_ids(site: Path) -> set[str]:
    found: set[str] = set()
    for path in (site / "reference").rglob("index.html"):
        found.update(re.findall(r'id="(ocfs2lab\.[^"]+)"', path.read_text()))
    return found


@pytest.mark.parametrize(
    ("page", "name"),
    [
        ("cluster", "Cluster"),
        ("hosts", "LabVm"),
        ("fs", "O2cbCluster"),
        ("fs", "OcfsVolume"),
        ("observe", "Timeline"),
        ("specs", "ClusterSpec"),
        ("errors", "Ocfs2LabError"),
    ],
)
def test_reference_documents_key_classes(site: Path, page: str, name: str) -> None:
    obj = getattr(ocfs2lab, name)
    html_text = (site / "reference" / page / "index.html").read_text()
    assert f'id="{obj.__module__}.{obj.__qualname__}"' in html_text
    assert name in page_text(site / "reference" / page / "index.html")


def test_every_public_name_is_in_the_reference(site: Path) -> None:
    ids = reference_ids(site)
    missing = []
    for name in ocfs2lab.__all__:
        obj = getattr(ocfs2lab, name)
        if f"{obj.__module__}.{obj.__qualname__}" not in ids:
            missing.append(f"{name} ({obj.__module__})")
    assert not missing, "not in the API reference (add a ::: directive): " + ", ".join(missing)


# -- snippets ---------------------------------------------------------------------------


def split_target(target: str) -> tuple[str, str | None]:
    path, _, section = target.partition(":")
    return path, section or None


def test_no_snippet_outside_a_code_block() -> None:
    for page, text in PAGES.items():
        assert "--8<--" not in outside_blocks(page, text), f"docs/{page}: a snippet outside a block"


@pytest.mark.parametrize("block", SNIPPET_BLOCKS, ids=lambda b: b.where)
def test_snippet_is_an_excerpt_of_an_example(block: Block) -> None:
    for target in block.snippet_targets() or []:
        path, section = split_target(target)
        assert path.startswith(SNIPPET_ROOT), f"{block.where}: {path} is not an example script"
        source = ROOT / path
        assert source.is_file(), f"{block.where}: {path} does not exist"
        text = source.read_text()
        compile(text, str(source), "exec")
        if section is not None:
            for mark in (f"[start:{section}]", f"[end:{section}]"):
                assert f"--8<-- {mark}" in text, f"{block.where}: {path} has no {mark}"


def section_lines(path: Path, section: str | None) -> list[str]:
    """The non-empty lines of a snippet section, stripped."""
    lines = path.read_text().splitlines()
    if section is not None:
        start = next(i for i, ln in enumerate(lines) if f"--8<-- [start:{section}]" in ln)
        end = next(i for i, ln in enumerate(lines) if f"--8<-- [end:{section}]" in ln)
        lines = lines[start + 1 : end]
    return [ln.strip() for ln in lines if ln.strip() and "--8<--" not in ln]


@pytest.mark.parametrize("block", SNIPPET_BLOCKS, ids=lambda b: b.where)
def test_snippet_is_shown_in_the_built_page(site: Path, block: Block) -> None:
    shown = page_text(built_page(site, block.page))
    for target in block.snippet_targets() or []:
        path, section = split_target(target)
        lines = section_lines(ROOT / path, section)
        assert lines, f"{block.where}: {target} is an empty excerpt"
        for line in lines:
            assert line in shown, f"{block.where}: {line!r} is not on the built page"


# -- blocks that are run ----------------------------------------------------------------


def test_every_block_has_a_known_kind() -> None:
    for b in BLOCKS:
        if b.snippet_targets() is not None:
            continue
        assert b.lang in RUN_LANGS | SHELL_LANGS, (
            f"{b.where}: a ```{b.lang or '(no language)'} block is neither run nor an excerpt "
            "of an example (use python, pycon, sh, or a --8<-- snippet)"
        )


def _no_machines(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError(
        "a documentation block reached a machine: show that code as a snippet of an example"
    )


@pytest.fixture
def no_machines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Blocks that are run must not boot, deploy or run anything."""
    monkeypatch.setattr(Lifecycle, "__enter__", _no_machines)
    monkeypatch.setattr(Machine, "run", _no_machines)
    monkeypatch.setattr(LocalRunner, "run", _no_machines)
    monkeypatch.setattr(SshRunner, "run", _no_machines)
    yield


def run_pycon(block: Block, namespace: dict[str, Any]) -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, namespace, block.where, block.page, block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    assert not runner.failures, f"{block.where}:\n" + "".join(report)
    namespace.update(test.globs)  # the test ran on a copy of the namespace


@pytest.mark.usefixtures("no_machines")
@pytest.mark.parametrize("page", RUN_PAGES)
def test_python_blocks_run(page: str) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs.{page}"}
    for block in (b for b in BLOCKS if b.page == page and b.snippet_targets() is None):
        if block.lang == "pycon":
            run_pycon(block, namespace)
        elif block.lang == "python":
            exec(compile(block.text, block.where, "exec"), namespace)


# -- command lines ----------------------------------------------------------------------


def cli_help(words: list[str]) -> CommandResult:
    with LocalRunner() as runner:
        return runner.run(
            [str(OCFS2LAB), *words, "--help"],
            check=False,
            timeout=120,
            env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        )


def check_ocfs2lab(where: str, args: list[str]) -> None:
    subcommand = []
    for word in args:
        if word.startswith("-"):
            break
        subcommand.append(word)
    assert subcommand, f"{where}: `ocfs2lab` without a subcommand"
    result = cli_help(subcommand)
    assert result.ok, f"{where}: `ocfs2lab {' '.join(subcommand)}` is not a command:\n{result}"
    for word in args:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert option in result.stdout, (
                f"{where}: `ocfs2lab {' '.join(subcommand)}` has no {option}"
            )


def looks_like_a_path(word: str) -> bool:
    return not word.startswith(("-", "~")) and ("/" in word or Path(word).suffix != "")


@pytest.mark.parametrize(
    ("block", "line"),
    SHELL_LINES,
    ids=[f"{b.where}:{' '.join(shlex.split(ln, comments=True))}" for b, ln in SHELL_LINES],
)
def test_command_line_names_what_exists(block: Block, line: str) -> None:
    words = [w.strip("[]") for w in shlex.split(line, comments=True)]
    program, args = words[0], words[1:]
    if program == "ocfs2lab":
        check_ocfs2lab(block.where, args)
    elif program == "bash":
        assert args and (ROOT / args[0]).is_file(), f"{block.where}: no script {args[:1]}"
    elif program.startswith(".venv/bin/"):
        assert (BIN / Path(program).name).exists(), f"{block.where}: {program} is not installed"
        if Path(program).name == "jupyter" and args:  # `jupyter lab` runs `jupyter-lab`
            sub = BIN / f"jupyter-{args[0]}"
            assert sub.exists(), f"{block.where}: {sub.name} is not installed (the notebook extra)"
        for word in args:
            if looks_like_a_path(word):
                assert (ROOT / word).exists(), f"{block.where}: {word} does not exist"
    else:
        pytest.fail(f"{block.where}: `{program}` is not a command these checks know")


# -- names the pages mention ------------------------------------------------------------

#: ``ocfs2lab.<name>`` and ``cluster.<name>`` as the pages and the README write them, in
#: prose or code; not part of a longer name or path (``io.ocfs2lab.lab``,
#: ``kernel-ocfs2lab.config``, ``ocfs2lab/cluster.py``). A name followed by ``=`` is a key
#: (a kernel parameter, a spec field in an error message), not an attribute.
_MENTION = re.compile(
    r"(?<![\w./-])(?P<root>ocfs2lab|cluster)\.(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?!\w|=)"
)
#: Endings that make a mention a file name (``cluster.conf``, ``cluster.md``).
FILE_SUFFIXES = frozenset({"conf", "md", "py", "json", "jsonl", "html", "png", "sh", "ipynb"})
#: The classes ``cluster.<name>`` may refer to: a name must exist on one of them.
CLUSTER_CLASSES = ("Cluster", "VmCluster", "SshCluster")


@frozen
class Mention:
    """One ``ocfs2lab.<path>`` or ``cluster.<path>`` on a page."""

    where: str
    root: str
    path: str

    def __str__(self) -> str:
        return f"{self.root}.{self.path}"


def mentions(where: str, text: str) -> list[Mention]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for m in _MENTION.finditer(line):
            path = m.group("path")
            if path.rsplit(".", 1)[-1] not in FILE_SUFFIXES:
                found.append(Mention(f"{where}:{number}", m.group("root"), path))
    return found


MENTIONS = [
    *(m for page, text in PAGES.items() for m in mentions(f"docs/{page}", text)),
    *mentions("README.md", README.read_text()),
]


def in_package(path: str) -> bool:
    """Whether ``ocfs2lab.<path>`` names something: an attribute or a submodule."""
    obj: Any = ocfs2lab
    parts = path.split(".")
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(".".join(["ocfs2lab", *parts[: i + 1]]))
            except ImportError:
                return False
    return True


def on_object(obj: Any, path: str) -> bool:
    """Whether ``obj.<path>`` exists: class and instance attributes, methods, properties. A
    property of a live handle cannot be evaluated on one that was never entered: that it
    exists is enough, and the names after it are not checked."""
    for part in path.split("."):
        try:
            inspect.getattr_static(obj, part)
        except AttributeError:
            return False
        try:
            obj = getattr(obj, part)
        except Exception:
            return True
    return True


def cluster_handles() -> list[Any]:
    """One handle of each cluster class, made and never entered (nothing runs)."""
    vm = ocfs2lab.VmCluster(3)
    nodes = [ocfs2lab.SshNode(n, ocfs2lab.SshTarget("192.0.2.1")) for n in vm.spec.nodes]
    ssh = ocfs2lab.SshCluster(nodes, "/dev/vdb")
    return [ocfs2lab.Cluster(LocalHost(), 3), vm, ssh]


def missing_mentions(found: list[Mention]) -> list[str]:
    handles = cluster_handles()
    assert [type(h).__name__ for h in handles] == list(CLUSTER_CLASSES)
    missing = []
    for m in found:
        if m.root == "ocfs2lab" and not in_package(m.path):
            missing.append(f"{m.where}: `{m}` is not in the ocfs2lab package")
        elif m.root == "cluster" and not any(on_object(h, m.path) for h in handles):
            missing.append(f"{m.where}: `{m}` exists on none of {', '.join(CLUSTER_CLASSES)}")
    return missing


@pytest.mark.usefixtures("no_machines")
def test_every_name_the_pages_mention_exists() -> None:
    """``cluster.disk_stall``, ``ocfs2lab.show_progress``: a name a page or the README
    mentions, in prose or in code, exists (``cluster.<name>`` on one of the cluster classes,
    ``ocfs2lab.<name>`` in the package)."""
    names = {str(m) for m in MENTIONS}
    assert {"cluster.disk_stall", "cluster.freeze", "ocfs2lab.show_progress"} <= names
    missing = missing_mentions(MENTIONS)
    assert not missing, "names that do not exist:\n" + "\n".join(missing)


@pytest.mark.usefixtures("no_machines")
def test_a_name_that_does_not_exist_is_caught() -> None:
    planted = mentions("planted.md", "with `cluster.stall_disks(3)`: `ocfs2lab.show_progres()`")
    assert [str(m) for m in planted] == ["cluster.stall_disks", "ocfs2lab.show_progres"]
    assert len(missing_mentions(planted)) == 2
    not_names = "io.ocfs2lab.lab=1 `cluster.conf` cluster.name='x' [a](cluster.md)"
    assert mentions("x.md", not_names) == []


# -- Sphinx roles -------------------------------------------------------------------------

#: Modules whose docstrings still use Sphinx roles because another change is rewriting them
#: right now; each leaves this list when its roles are converted (the test below says so).
PENDING_ROLES: frozenset[str] = frozenset()
_ROLES = r"(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const)"
#: A Sphinx role in source (``:class:`Kill```): mkdocstrings does not render these.
SOURCE_ROLE = re.compile(rf":{_ROLES}:`")
#: A role as a built page shows it: ``:class:Kill:``, ``:meth:~ocfs2lab.x.y``.
RENDERED_ROLE = re.compile(rf":{_ROLES}:\S")


def roles_in_source() -> dict[str, list[str]]:
    """``{file: [file:line: text]}`` of every Sphinx role in the package's source."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "ocfs2lab").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        lines = path.read_text().splitlines()
        hits = [
            f"{rel}:{n}: {ln.strip()}" for n, ln in enumerate(lines, 1) if SOURCE_ROLE.search(ln)
        ]
        if hits:
            found[rel] = hits
    return found


def test_docstrings_use_no_sphinx_roles() -> None:
    """Docstrings write ``Name`` or ``[`Name`][ocfs2lab.module.Name]`` (a cross-reference
    that mkdocstrings renders as a link), never ``:class:`Name```."""
    found = roles_in_source()
    stray = [hit for rel, hits in found.items() if rel not in PENDING_ROLES for hit in hits]
    assert not stray, (
        "Sphinx roles, which the API reference shows as raw text; write `Name` or "
        "[`Name`][ocfs2lab.module.Name]:\n" + "\n".join(stray)
    )
    done = sorted(PENDING_ROLES - set(found))
    assert not done, f"no Sphinx role left in {done}: remove them from PENDING_ROLES"


def module_of(ident: str) -> str:
    """The module an object's id belongs to: ``ocfs2lab.vm.kernel`` of
    ``ocfs2lab.vm.kernel.KernelBuild.load``."""
    parts = ident.split(".")
    for i in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        return ".".join(parts[:i])
    return ident


PENDING_MODULES = frozenset(p.removesuffix(".py").replace("/", ".") for p in PENDING_ROLES)


def reference_sections(site: Path) -> Iterator[tuple[str, str, str]]:
    """``(page, object id, text)`` of each documented object of the reference, in page
    order; the text before a page's first object has the id ``(page)``."""
    for path in sorted((site / "reference").rglob("index.html")):
        page = str(path.parent.relative_to(site))
        source = path.read_text()
        marks = [(m.start(), m.group(1)) for m in re.finditer(r'id="(ocfs2lab\.[^"]+)"', source)]
        ends = [start for start, _ in marks[1:]] + [len(source)] if marks else []
        first = marks[0][0] if marks else len(source)
        yield page, "(page)", html.unescape(re.sub(r"<[^>]+>", "", source[:first]))
        for (start, ident), end in zip(marks, ends, strict=True):
            yield page, ident, html.unescape(re.sub(r"<[^>]+>", "", source[start:end]))


def raw_roles(site: Path) -> list[str]:
    raw = []
    for page, ident, text in reference_sections(site):
        if ident != "(page)" and module_of(ident) in PENDING_MODULES:
            continue
        for m in RENDERED_ROLE.finditer(text):
            context = " ".join(text[max(0, m.start() - 40) : m.end() + 40].split())
            raw.append(f"{page}: {ident}: ...{context}...")
    return raw


def test_the_reference_shows_no_raw_roles(site: Path) -> None:
    """The built API reference shows no ``:class:Kill:``: every cross-reference is a link or
    code."""
    raw = raw_roles(site)
    assert not raw, "raw Sphinx roles in the built reference:\n" + "\n".join(raw)
    # What the pages render from the modules still pending does show roles: the check sees.
    pending = [i for _, i, text in reference_sections(site) if RENDERED_ROLE.search(text)]
    assert all(module_of(i) in PENDING_MODULES for i in pending)
    assert not PENDING_MODULES or pending, "no raw role left: empty PENDING_ROLES"


# -- figures: measured once, in docs/facts.md, and each says how -------------------------

FACTS = DOCS / "facts.md"
#: A measured figure: a number with a unit of time (``818 s``, ``6s``, ``27.5 min``,
#: ``12088 milliseconds``) or a percentage.
_FIGURE = re.compile(
    r"\d(?:[\d.,]*\d)?\s*(?:%|s\b|ms\b|secs?\b|seconds?\b|milliseconds?\b|min\b|minutes?\b"
    r"|h\b|hours?\b)"
)
#: How a figure was measured: a command (``ocfs2lab ...``, ``.venv/bin/...``, ``bash ...``)
#: or a file of the repository that measures or holds it.
_SOURCE = re.compile(
    r"`(?P<command>(?:ocfs2lab |\.venv/bin/|bash )[^`]+)`"
    r"|(?P<path>(?:benchmarks|tests|examples|scripts|\.ci)/[\w./-]+(?:::\w+)?)"
)


@frozen
class Bullet:
    """A bullet of ``docs/facts.md``, its continuation lines joined, under its heading."""

    line: int
    heading: str
    text: str

    @property
    def where(self) -> str:
        return f"docs/facts.md:{self.line}"


def facts_bullets(text: str) -> list[Bullet]:
    bullets: list[Bullet] = []
    heading = ""
    current: list[str] = []
    start = 0

    def close() -> None:
        if current:
            bullets.append(Bullet(start, heading, " ".join(current)))
            current.clear()

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            close()
            heading = line.lstrip("#").strip()
        elif line.startswith("- "):
            close()
            start = number
            current.append(line[2:].strip())
        elif line.startswith("  ") and current:
            current.append(line.strip())
        else:
            close()
    close()
    return bullets


def unsourced(bullets: list[Bullet]) -> list[str]:
    """Bullets with a figure and no source in them or in their heading."""
    return [
        f"{b.where}: {b.text[:90]}..."
        for b in bullets
        if _FIGURE.search(b.text) and not (_SOURCE.search(b.text) or _SOURCE.search(b.heading))
    ]


def test_every_figure_in_facts_says_how_it_was_measured() -> None:
    """Each bullet of docs/facts.md with a time or a percentage names how it was measured (a
    command, a benchmark, a test or an example), in the bullet or in its section's heading."""
    bullets = facts_bullets(FACTS.read_text())
    measured = [b for b in bullets if _FIGURE.search(b.text)]
    assert len(measured) >= 20, "docs/facts.md lost its figures?"
    missing = unsourced(bullets)
    assert not missing, "figures that do not say how they were measured:\n" + "\n".join(missing)
    # The check sees a figure without a source.
    planted = facts_bullets("## Boot\n- A boot takes 15.7 s\n  under TCG.\n")
    assert unsourced(planted) == ["docs/facts.md:2: A boot takes 15.7 s under TCG...."]


def facts_sources() -> list[tuple[str, str, str]]:
    """``(where, kind, text)`` of every source the bullets and headings of facts.md name."""
    found = []
    for b in facts_bullets(FACTS.read_text()):
        for text in (b.text, b.heading):
            for m in _SOURCE.finditer(text):
                kind = "command" if m.group("command") else "path"
                found.append((b.where, kind, m.group(kind)))
    return sorted(set(found))


def check_path(where: str, path: str) -> None:
    file, _, test = path.rstrip(".").partition("::")
    assert (ROOT / file).exists(), f"{where}: {file} does not exist"
    if test:
        assert f"def {test}(" in (ROOT / file).read_text(), f"{where}: no {test} in {file}"


@pytest.mark.parametrize(("where", "kind", "text"), facts_sources())
def test_the_sources_facts_name_exist(where: str, kind: str, text: str) -> None:
    """The benchmarks, tests and examples that facts.md names exist; its commands name real
    subcommands and options, and files that exist."""
    if kind == "path":
        check_path(where, text)
        return
    words = shlex.split(text)
    if words[0] == "ocfs2lab":
        check_ocfs2lab(where, words[1:])
    elif words[0] == "bash":
        assert (ROOT / words[1]).is_file(), f"{where}: no script {words[1]}"
    else:
        assert (BIN / Path(words[0]).name).exists(), f"{where}: {words[0]} is not installed"
        for word in words[1:]:
            if looks_like_a_path(word):
                check_path(where, word)


#: A claim of how long something takes in minutes or hours ("about 9 minutes", "a 9-minute
#: compile", "a few minutes", "a minute or two"). Such claims are stated once, in
#: docs/facts.md, and every other page links there.
_TIME_CLAIM = re.compile(
    r"\b(?:\d+(?:\.\d+)?|a few|a couple of|several|one|two|three|four|five|six|seven|eight"
    r"|nine|ten|eleven|twelve|fifteen|twenty|thirty)(?:\s*(?:-|to)\s*\d+)?[\s-]*"
    r"(?:minutes?|mins?|hours?)\b|\ba minute\b|\ban hour\b",
    re.IGNORECASE,
)
#: Where a new user reads how long things take: the guide, the README, the scripts, the
#: examples, and what doctor and the command line say.
TIME_CLAIM_FILES = sorted(
    {
        README,
        *DOCS.rglob("*.md"),
        *(ROOT / "scripts").iterdir(),
        *(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".py", ".sh", ".ipynb")),
        *(ROOT / "ocfs2lab" / "doctor").glob("*.py"),
        ROOT / "ocfs2lab" / "cli.py",
    }
    - {FACTS}
)
#: Claims in files that another change is rewriting right now: (file, claim). Each leaves
#: this list when its claim is gone (the test says so).
PENDING_TIME_CLAIMS: frozenset[tuple[str, str]] = frozenset()


def time_claims(path: Path) -> list[tuple[str, str, str]]:
    """``(file, line, claim)`` of each time claim in a file."""
    rel = str(path.relative_to(ROOT))
    text = path.read_text()
    if path.suffix == ".ipynb":  # the cells' text, not the JSON around it
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for m in _TIME_CLAIM.finditer(line):
            start = line.rfind(" ", 0, max(0, m.start() - 1))
            claim = line[start + 1 : m.end()].strip()
            found.append((rel, f"{rel}:{number}", claim))
    return found


def test_time_claims_are_made_once_in_facts() -> None:
    """ "About 12 minutes" in one place and "about 9 minutes" in another: each page links to
    docs/facts.md (First run) instead of saying how long something takes."""
    claims = [c for path in TIME_CLAIM_FILES for c in time_claims(path)]
    stray = [
        f"{where}: {claim!r}"
        for rel, where, claim in claims
        if not any(rel == f and pending in claim for f, pending in PENDING_TIME_CLAIMS)
    ]
    assert not stray, (
        "time claims outside docs/facts.md (link to facts.md#first-run instead):\n"
        + "\n".join(stray)
    )
    for file, pending in PENDING_TIME_CLAIMS:
        assert any(rel == file and pending in c for rel, _, c in claims), (
            f"{file} no longer says {pending!r}: remove it from PENDING_TIME_CLAIMS"
        )
    # The check sees the claims this guide used to make.
    for said in ("about 12 minutes", "a 9-minute compile", "a few minutes", "a minute or two"):
        assert _TIME_CLAIM.search(said), said
    assert FACTS.read_text().count("\n## First run\n") == 1  # where the others link


# -- long operations show progress ---------------------------------------------------------

#: What runs for minutes: a lab VM or a cluster entered, a kernel or image built, kernels
#: compared.
_LONG = re.compile(
    r"\b(?:LabVm|VmCluster|SshCluster|Cluster)\(.*\)\s+as\s+\w+"
    r"|\.__enter__\(\)"
    r"|\b(?:compare_kernels|build_image|build_kernel)\("
)
#: Root logging at INFO shows every command the library runs (the ``sh`` library logs each
#: at INFO): a screen of ssh command lines instead of phases.
_ROOT_LOGGING = re.compile(r"logging\.basicConfig\([^)]*level\s*=\s*logging\.(?:INFO|DEBUG)")
#: Pages whose snippets come from an example being rewritten elsewhere right now.
PENDING_PROGRESS: frozenset[str] = frozenset()


def page_code(page: str, text: str) -> str:
    """The code a page shows: its blocks, with each snippet's section taken from its file."""
    shown = []
    for block in parse_blocks(page, text):
        targets = block.snippet_targets()
        if targets is None:
            shown.append(block.text)
            continue
        for target in targets:
            path, section = split_target(target)
            shown.append("\n".join(section_lines(ROOT / path, section)))
    return "\n".join(shown)


def progress_units() -> list[tuple[str, str]]:
    """``(where, code)``: each example, the notebook, each README block, each page."""
    units = [
        (str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "examples").glob("*.py"))
    ]
    for notebook in sorted((ROOT / "examples").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        units.append((str(notebook.relative_to(ROOT)), code))
    units += [(b.where, b.text) for b in README_BLOCKS if b.lang == "python"]
    units += [(f"docs/{page}", page_code(page, text)) for page, text in PAGES.items()]
    return units


def silent(units: list[tuple[str, str]]) -> list[str]:
    bad = []
    for where, code in units:
        if _LONG.search(code) and "show_progress()" not in code:
            bad.append(f"{where}: a long operation without ocfs2lab.show_progress()")
        if _ROOT_LOGGING.search(code):
            bad.append(f"{where}: root logging at INFO prints every command line")
    return bad


def test_long_operations_show_progress() -> None:
    """Every example, the notebook, every README snippet and every page that boots, builds
    or deploys calls ``ocfs2lab.show_progress()``, so a user sees phases rather than minutes
    of silence (or a screen of ssh command lines)."""
    units = progress_units()
    assert sum(1 for _, code in units if _LONG.search(code)) >= 8
    bad = [b for b in silent(units) if b.split(":", 1)[0] not in PENDING_PROGRESS]
    assert not bad, "\n".join(bad)
    pending = [b for b in silent(units) if b.split(":", 1)[0] in PENDING_PROGRESS]
    assert len(pending) == len(PENDING_PROGRESS), (
        f"{PENDING_PROGRESS} show progress now: empty PENDING_PROGRESS ({pending})"
    )
    # The check sees a silent one.
    assert silent([("x.py", "with ocfs2lab.LabVm() as host:\n    pass\n")])
    assert silent([("y.py", "logging.basicConfig(level=logging.INFO)\n")])


@pytest.mark.parametrize(
    "block", [b for b in README_BLOCKS if b.lang == "python"], ids=lambda b: b.where
)
def test_readme_python_compiles(block: Block) -> None:
    """The README's Python reaches machines, so it is not run; it compiles, and the names
    it uses exist (test_every_name_the_pages_mention_exists)."""
    compile(block.text, block.where, "exec")
