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

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"

    def snippet_targets(self) -> list[str] | None:
        """The ``--8<--`` targets when the block holds only snippet lines, else None."""
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        found = [_SNIPPET.match(ln) for ln in lines]
        if not lines or not all(found):
            return None
        return [m.group("target") for m in found if m is not None]


def parse_blocks(page: str, text: str) -> list[Block]:
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
        blocks.append(Block(page, i + 1, j + 1, lang, "\n".join(body) + "\n"))
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
SHELL_LINES = [
    (b, line.strip())
    for b in BLOCKS
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
        for line in section_lines(ROOT / path, section):
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
        for word in args:
            if looks_like_a_path(word):
                assert (ROOT / word).exists(), f"{block.where}: {word} does not exist"
    else:
        pytest.fail(f"{block.where}: `{program}` is not a command these checks know")
