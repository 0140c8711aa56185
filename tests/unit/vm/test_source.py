"""The kernel source layers: patch parsing, deltas, the work tree sync, the user's tree.

Pure helpers are tested on text; the rest runs the real ``patch`` and ``git`` on small trees
made here (a Linux tree's marker files, nothing compiled).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.recipe import KernelRecipe
from ocfs2lab.vm.source import (
    GCOV_SUFFIX,
    UNKNOWN,
    Delta,
    PristineSource,
    SourceError,
    apply_patches,
    check_linux_tree,
    compute_delta_changes,
    failed_hunks,
    git_blob_id,
    linux_version,
    patch_targets,
    sync_work_tree,
    tree_delta,
    tree_manifest,
    tree_state,
)
from tests.support.git import git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed here")
needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="patch is not installed")

FORMAT_PATCH = """From 1234 Mon Sep 17 00:00:00 2001
From: A Researcher <a@example.org>
Subject: [PATCH] ocfs2/dlm: wait in recovery

---
 fs/ocfs2/dlm/dlmrecovery.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/fs/ocfs2/dlm/dlmrecovery.c b/fs/ocfs2/dlm/dlmrecovery.c
index 1111111..2222222 100644
--- a/fs/ocfs2/dlm/dlmrecovery.c
+++ b/fs/ocfs2/dlm/dlmrecovery.c
@@ -1,3 +1,4 @@
 int a;
+int delay;
 int b;
 int c;
diff --git a/fs/ocfs2/new.c b/fs/ocfs2/new.c
new file mode 100644
--- /dev/null
+++ b/fs/ocfs2/new.c
@@ -0,0 +1 @@
+int new;
--
2.39.2
"""


def test_patch_targets_of_format_patch_and_plain_diff() -> None:
    assert patch_targets(FORMAT_PATCH) == ["fs/ocfs2/dlm/dlmrecovery.c", "fs/ocfs2/new.c"]
    plain = "--- linux.orig/fs/x.c\t2024\n+++ linux/fs/x.c\t2024\n@@ -1 +1 @@\n-a\n+b\n"
    assert patch_targets(plain) == ["fs/x.c"]
    deleted = "--- a/fs/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"
    assert patch_targets(deleted) == ["fs/gone.c"]
    assert patch_targets("just text\n") == []


def test_failed_hunks_name_file_and_hunk() -> None:
    output = (
        "patching file fs/ocfs2/dlm/dlmrecovery.c\n"
        "Hunk #1 FAILED at 10.\n"
        "1 out of 1 hunk FAILED -- saving rejects to file fs/ocfs2/dlm/dlmrecovery.c.rej\n"
    )
    assert failed_hunks(output)[0] == "fs/ocfs2/dlm/dlmrecovery.c: Hunk #1 FAILED at 10."


def test_blob_id_matches_git() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_delta_changes() -> None:
    pristine = {"a.c": "1", "b.c": "2", "c.c": "3"}
    assert compute_delta_changes(pristine, {}, {}) == []
    # Patch a.c, add d.c, delete c.c.
    wanted: dict[str, str | None] = {"a.c": "9", "d.c": "4", "c.c": None}
    assert compute_delta_changes(pristine, {}, wanted) == ["a.c", "c.c", "d.c"]
    # Same delta again: nothing to do; back to pristine: the same three paths.
    assert compute_delta_changes(pristine, wanted, wanted) == []
    assert compute_delta_changes(pristine, wanted, {}) == ["a.c", "c.c", "d.c"]
    # A delta entry equal to the pristine content is no change; an unknown one always is.
    assert compute_delta_changes(pristine, {"a.c": "1"}, {}) == []
    assert compute_delta_changes(pristine, {"b.c": UNKNOWN}, {}) == ["b.c"]


def test_linux_version() -> None:
    assert linux_version("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\n") == "6.12.117"
    assert linux_version("all:\n\techo\n") is None


def fake_linux(root: Path) -> Path:
    """A tree with a Linux tree's markers and a few files."""
    (root / "fs" / "ocfs2" / "dlm").mkdir(parents=True)
    (root / "arch" / "x86").mkdir(parents=True)
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\n")
    for name in ("Kconfig", "MAINTAINERS", "arch/x86/Kconfig"):
        (root / name).write_text("x\n")
    (root / "fs" / "ocfs2" / "Makefile").write_text("obj-m += ocfs2.o\n")
    (root / "fs" / "ocfs2" / "dlm" / "dlmrecovery.c").write_text("int a;\nint b;\nint c;\n")
    (root / "fs" / "ocfs2" / "super.c").write_text("int s;\n")
    return root


def pristine_of(tmp_path: Path) -> PristineSource:
    directory = tmp_path / "src"
    fake_linux(directory / "linux")
    (directory / "manifest.json").write_text(json.dumps(tree_manifest(directory / "linux")))
    (directory / "source.json").write_text(json.dumps({"tarball_sha256": "0" * 64}))
    found = PristineSource.load(directory)
    assert found is not None
    return found


@needs_patch
def test_patches_apply_in_scratch_and_a_bad_one_names_its_hunk(tmp_path: Path) -> None:
    pristine = pristine_of(tmp_path)
    patch = tmp_path / "0001-wait.patch"
    patch.write_text(FORMAT_PATCH)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = tree_manifest(pristine.tree)
    delta = apply_patches([patch], Delta({}, {}), pristine.tree, scratch, LocalRunner())
    assert set(delta.ids) == {"fs/ocfs2/dlm/dlmrecovery.c", "fs/ocfs2/new.c"}
    assert delta.sources["fs/ocfs2/new.c"].read_text() == "int new;\n"
    assert "int delay;" in delta.sources["fs/ocfs2/dlm/dlmrecovery.c"].read_text()
    assert tree_manifest(pristine.tree) == before  # the pristine tree is never written

    bad = tmp_path / "0002-stale.patch"
    bad.write_text(
        "--- a/fs/ocfs2/super.c\n+++ b/fs/ocfs2/super.c\n@@ -1 +1 @@\n-int gone;\n+int s2;\n"
    )
    scratch2 = tmp_path / "scratch2"
    scratch2.mkdir()
    with pytest.raises(SourceError) as err:
        apply_patches([patch, bad], Delta({}, {}), pristine.tree, scratch2, LocalRunner())
    message = str(err.value)
    assert "0002-stale.patch does not apply" in message
    assert "fs/ocfs2/super.c: Hunk #1 FAILED" in message
    assert "-int gone;" in message  # the rejected hunk itself
    assert err.value.patch == bad


def test_sync_rewrites_only_changed_files_with_fresh_mtimes(tmp_path: Path) -> None:
    pristine = pristine_of(tmp_path)
    work = tmp_path / "work"
    shutil.copytree(pristine.tree, work / "linux", symlinks=True)
    manifest = pristine.manifest()
    old = time.time() - 3600
    for path in (work / "linux").rglob("*"):
        os.utime(path, (old, old))
    patched = tmp_path / "patched.c"
    patched.write_text("int a;\nint delay;\n")
    extra_makefile = tmp_path / "Makefile.new"
    extra_makefile.write_text("obj-m += ocfs2.o\nocfs2-y += new.o\n")
    wanted = Delta(
        {
            "fs/ocfs2/dlm/dlmrecovery.c": git_blob_id(patched.read_bytes()),
            "fs/ocfs2/Makefile": git_blob_id(extra_makefile.read_bytes()),
            "fs/ocfs2/super.c": None,
        },
        {"fs/ocfs2/dlm/dlmrecovery.c": patched, "fs/ocfs2/Makefile": extra_makefile},
    )
    changed = sync_work_tree(work, pristine, wanted, ("fs/ocfs2",), manifest)
    assert changed == ["fs/ocfs2/Makefile", "fs/ocfs2/dlm/dlmrecovery.c", "fs/ocfs2/super.c"]
    tree = work / "linux"
    assert (tree / "fs/ocfs2/dlm/dlmrecovery.c").read_text() == "int a;\nint delay;\n"
    assert (tree / "fs/ocfs2/dlm/dlmrecovery.c").stat().st_mtime > old + 1800
    assert not (tree / "fs/ocfs2/super.c").exists()
    # A profiled directory's Makefile keeps the lab's gcov line.
    assert (tree / "fs/ocfs2/Makefile").read_bytes().endswith(GCOV_SUFFIX)
    assert (tree / "Kconfig").stat().st_mtime == pytest.approx(old)  # untouched
    # The same delta again: nothing to do. Back to pristine: the three files come back.
    assert sync_work_tree(work, pristine, wanted, ("fs/ocfs2",), manifest) == []
    assert len(sync_work_tree(work, pristine, Delta({}, {}), ("fs/ocfs2",), manifest)) == 3
    assert (tree / "fs/ocfs2/dlm/dlmrecovery.c").read_text() == "int a;\nint b;\nint c;\n"
    assert (tree / "fs/ocfs2/super.c").read_text() == "int s;\n"


def test_linux_tree_checks(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="must be a directory"):
        check_linux_tree(tmp_path / "none")
    (tmp_path / "notes").mkdir()
    with pytest.raises(SpecError, match="is not a Linux source tree") as err:
        check_linux_tree(tmp_path / "notes")
    assert err.value.field == "kernel.tree"
    tree = fake_linux(tmp_path / "linux")
    with pytest.raises(SpecError, match="must be a git checkout"):
        check_linux_tree(tree)
    with pytest.raises(SpecError, match="not a Linux source tree"):
        KernelRecipe(tree=tmp_path / "notes")


@needs_git
def test_user_tree_key_changes_with_commit_and_edit_and_tree_is_untouched(
    tmp_path: Path,
) -> None:
    pristine = pristine_of(tmp_path)
    tree = fake_linux(tmp_path / "mine")
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "base")
    recipe = KernelRecipe(tree=tree)
    clean = tree_state(tree)
    assert not clean.dirty and clean.version == "6.12.117"
    key0 = recipe.key()
    assert tree_delta(tree, pristine.manifest()).ids == {}

    (tree / "fs/ocfs2/super.c").write_text("int s;\nint edited;\n")
    edited = tree_state(tree)
    assert edited.dirty and edited.commit == clean.commit
    key1 = recipe.key()
    assert key1 != key0
    delta = tree_delta(tree, pristine.manifest())
    assert list(delta.ids) == ["fs/ocfs2/super.c"]

    git(tree, "commit", "-q", "-am", "mine")
    key2 = recipe.key()
    assert key2 not in (key0, key1)
    (tree / "fs/ocfs2/untracked.c").write_text("int u;\n")
    assert recipe.key() != key2  # an untracked source file counts too
    assert "fs/ocfs2/untracked.c" in tree_delta(tree, pristine.manifest()).ids
    (tree / "fs/ocfs2/untracked.c").unlink()
    assert recipe.key() == key2
    assert recipe.provenance()["tree"] == {
        "path": str(tree),
        "commit": git(tree, "rev-parse", "HEAD").strip(),
        "dirty": False,
    }
    # Reading it writes nothing into it: the index stays as git left it, the status clean.
    git(tree, "status", "--porcelain")  # (this refresh is the test's own)
    index = tree / ".git" / "index"
    index_before = (index.read_bytes(), index.stat().st_mtime_ns)
    assert recipe.key() == key2 and not tree_state(tree).dirty
    edited_id = git(tree, "rev-parse", "HEAD:fs/ocfs2/super.c").strip()
    assert tree_delta(tree, pristine.manifest()).ids == {"fs/ocfs2/super.c": edited_id}
    recipe.provenance()
    assert (index.read_bytes(), index.stat().st_mtime_ns) == index_before
    assert git(tree, "status", "--porcelain") == ""


def test_recipe_provenance_and_profile(tmp_path: Path) -> None:
    patch = tmp_path / "0001-wait.patch"
    patch.write_text(FORMAT_PATCH)
    plain = KernelRecipe()
    patched = KernelRecipe(patches=[patch])
    debug = KernelRecipe(profile="debug", config=["CONFIG_PRINTK_TIME=y"])
    assert len({plain.key(), patched.key(), debug.key()}) == 3
    # Patches change the source only: the work tree (and its objects) is shared.
    assert patched.work_name() == plain.work_name() != debug.work_name()
    info = patched.provenance()
    assert info["patches"][0]["name"] == "0001-wait.patch"
    assert len(info["patches"][0]["sha256"]) == 64
    assert info["tree"] is None and info["key"] == patched.key()
    assert "CONFIG_PROVE_LOCKING=y" in debug.config_text()
    assert debug.config_text().rstrip().endswith("CONFIG_PRINTK_TIME=y")
    before = patched.key()
    patch.write_text(FORMAT_PATCH.replace("int delay;", "int delay2;"))
    assert patched.key() != before  # the key follows the patch file's content
    not_a_diff = tmp_path / "notes.txt"
    not_a_diff.write_text("hello\n")
    with pytest.raises(SpecError, match="is not a unified diff"):
        KernelRecipe(patches=[not_a_diff])
