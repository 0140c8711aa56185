"""What a lab image is made of ([`ImageRecipe`][ocfs2lab.vm.recipe.ImageRecipe]), what a built one
is ([`LabImage`][ocfs2lab.vm.recipe.LabImage]),
and where images live on disk.

One image serves the lab host VM and VM cluster nodes alike: a Debian root file system
(ext4, found by label) with the lab's kernel, systemd, sshd, Docker, DRBD and OCFS2 tools,
plus the Docker node image ``ocfs2-node:latest`` already built inside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.vm.source import TreeState, check_linux_tree, check_patch, tree_state

#: Version of the build logic in `ocfs2lab.vm.image`. Bump it whenever a change there
#: changes the image it makes (files written, units switched, steps added): the recipe key
#: changes with it and images are rebuilt.
IMAGE_BUILD_VERSION = 4

#: Label of the root file system; the kernel command line says ``root=LABEL=<this>``.
ROOT_LABEL = "ocfs2lab-root"
#: MAC address of the user-mode (slirp) NIC; the guest's networkd matches it for DHCP.
SSH_NIC_MAC = "52:54:00:6c:61:62"
#: Name of the Docker image built into the lab image, and of the imported base it builds on.
NODE_IMAGE = "ocfs2-node:latest"
NODE_BASE_IMAGE = "ocfs2lab/node-base:latest"

DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUPPORTED_RELEASES = ("trixie", "bookworm")

#: Packages of the lab VM (debootstrap ``--variant=minbase --include``).
DEFAULT_PACKAGES: tuple[str, ...] = (
    "linux-image-amd64",
    "initramfs-tools",
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "docker.io",
    "iptables",
    "drbd-utils",
    "ocfs2-tools",
    # The userspace cluster stack (stack="pcmk"): corosync, dlm_controld and dlm_tool.
    "corosync",
    "dlm-controld",
    "python3",
    "iproute2",
    "iputils-ping",
    "kmod",
    "procps",
    "psmisc",
    "util-linux",
    "e2fsprogs",
    "ca-certificates",
)

#: Packages added per release: from Debian 13 on, the docker CLI is its own package.
RELEASE_PACKAGES: dict[str, tuple[str, ...]] = {"bookworm": ()}
NEWER_RELEASE_PACKAGES: tuple[str, ...] = ("docker-cli",)


#: The package of Debian's own kernel (left out when the lab builds its kernel).
DEBIAN_KERNEL_PACKAGE = "linux-image-amd64"


def default_packages(release: str, *, debian_kernel: bool = False) -> tuple[str, ...]:
    """The lab VM's default package list for ``release``.

    Debian's kernel package is in it only with ``debian_kernel``: by default the lab boots
    the kernel it builds ([`KernelRecipe`][ocfs2lab.vm.recipe.KernelRecipe]).
    """
    packages = DEFAULT_PACKAGES + RELEASE_PACKAGES.get(release, NEWER_RELEASE_PACKAGES)
    if not debian_kernel:
        packages = tuple(p for p in packages if p != DEBIAN_KERNEL_PACKAGE)
    return packages


#: Packages of the Docker node image's root file system (a second minbase debootstrap).
DEFAULT_NODE_PACKAGES: tuple[str, ...] = (
    "ocfs2-tools",
    "iproute2",
    "iputils-ping",
    "procps",
    "kmod",
    "util-linux",
    "e2fsprogs",
    "python3-minimal",
)

#: Version of the build logic below; bump it when a change alters the kernel it makes.
KERNEL_BUILD_VERSION = 2
#: The lab's configuration fragment (an asset, hashed into the recipe key).
FRAGMENT_ASSET = "kernel-ocfs2lab.config"
#: Debian's kernel source package of each supported release.
SOURCE_PACKAGES = {"trixie": "linux-source-6.12", "bookworm": "linux-source-6.1"}
#: Directories whose code carries gcov counters (with all their subdirectories).
DEFAULT_GCOV_DIRS = ("fs/ocfs2", "fs/dlm", "drivers/block/drbd")

_SOURCE = re.compile(r"^linux-source-\d+\.\d+$")
_DIR = re.compile(r"^[a-z0-9_][a-z0-9_./-]*$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_RELEASE = re.compile(r"^[a-z]+$")
_MIRROR = re.compile(r"^https?://[^\s]+$")
_CONFIG_SET = re.compile(r"^CONFIG_[A-Za-z0-9_]+=(y|m|n|-?\d+|0x[0-9a-fA-F]+|\"[^\"]*\")$")
_CONFIG_UNSET = re.compile(r"^# CONFIG_[A-Za-z0-9_]+ is not set$")

#: Where the lab VM's own configuration files come from, and the node image's scripts.
VM_ASSETS = Path(__file__).parent / "assets"
NODE_ASSETS = Path(__file__).parent.parent / "node" / "assets"
#: The coverage probe: a small C program of the project's own, compiled with gcov into the
#: lab image (``/usr/local/bin``) and the node image, its notes kept in the image directory.
PROBE_ASSETS = Path(__file__).parent.parent / "coverage" / "assets"
PROBE_SOURCE = "o2probe.c"
PROBE_PROGRAM = "o2probe"
TOOLS_GCOV_DIR = "tools-gcov"
#: Where instrumented programs in the lab's guests and containers write their ``.gcda``
#: files (``GCOV_PREFIX``: the image's sshd and the node image set it).
GCOV_PREFIX = "/var/lib/ocfs2lab/gcov"


def _packages(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(sorted(set(value)))


def _check_packages(_inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value:
        raise SpecError(f"recipe.{attr.name}", value, "needs at least one package")
    for name in value:
        if not _PACKAGE.match(name):
            raise SpecError(f"recipe.{attr.name}", name, "is not a Debian package name")


def _check_release(_inst: object, _attr: object, value: str) -> None:
    if not _RELEASE.match(value):
        raise SpecError("recipe.release", value, "must be a Debian code name such as 'trixie'")


def _check_mirror(_inst: object, _attr: object, value: str) -> None:
    if not _MIRROR.match(value):
        raise SpecError("recipe.mirror", value, "must be an http(s) URL of a Debian mirror")


def _check_disk(_inst: object, _attr: object, value: int) -> None:
    if not 2048 <= value <= 1024 * 1024:
        raise SpecError("recipe.disk_size_mib", value, "must be between 2048 and 1048576 MiB")


def _check_version(_inst: object, _attr: object, value: int) -> None:
    if value < 1:
        raise SpecError("recipe.build_version", value, "must be a positive integer")


def asset_files(*directories: Path) -> dict[str, bytes]:
    """Every file under ``directories`` (recursively), keyed ``<dir name>/<relative path>``."""
    files: dict[str, bytes] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"{directory.parent.name}/{path.relative_to(directory)}"] = path.read_bytes()
    return files


def _check_source(_inst: object, _attr: object, value: str) -> None:
    if not _SOURCE.match(value):
        raise SpecError(
            "kernel.source_package", value, "must be a Debian package like 'linux-source-6.12'"
        )


def _dirs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    return tuple(str(v).strip("/") for v in value)


def _check_dirs(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    if not value:
        raise SpecError("kernel.gcov_dirs", value, "needs at least one directory")
    for item in value:
        if not _DIR.match(item) or ".." in item.split("/"):
            raise SpecError(
                "kernel.gcov_dirs", item, "must be a relative directory of the kernel tree"
            )


def _check_jobs(_inst: object, _attr: object, value: int | None) -> None:
    if value is not None and value < 1:
        raise SpecError("kernel.jobs", value, "must be a positive number of make jobs")


def _patch_paths(value: Any) -> tuple[Path, ...]:
    if isinstance(value, (str, os.PathLike)):
        value = (value,)
    return tuple(Path(v).expanduser().absolute() for v in value)


def _check_patches(_inst: object, _attr: object, value: tuple[Path, ...]) -> None:
    names = [p.name for p in value]
    for path in value:
        if not path.is_file():
            raise SpecError("kernel.patches", str(path), "must be an existing patch file")
        check_patch(path)
    if len(set(names)) != len(names):
        raise SpecError("kernel.patches", names, "patch file names must be unique")


def _tree_path(value: Any) -> Path | None:
    return None if value is None else Path(value).expanduser().absolute()


def _check_tree(_inst: object, _attr: object, value: Path | None) -> None:
    if value is not None:
        check_linux_tree(value)


def _config_lines(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.splitlines()
    return tuple(line.strip() for line in value if line.strip())


def _check_config(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    for line in value:
        if not (_CONFIG_SET.match(line) or _CONFIG_UNSET.match(line)):
            raise SpecError(
                "kernel.config",
                line,
                "each line must read CONFIG_NAME=value or '# CONFIG_NAME is not set'",
            )


def _check_profile(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and value not in CONFIG_PROFILES:
        raise SpecError("kernel.profile", value, f"must be one of {sorted(CONFIG_PROFILES)}")


#: Named sets of configuration lines (``KernelRecipe(profile="debug")``).
CONFIG_PROFILES: dict[str, tuple[str, ...]] = {
    "debug": (
        "CONFIG_DEBUG_KERNEL=y",
        # lockdep: lock order and context checking
        "CONFIG_PROVE_LOCKING=y",
        "CONFIG_DEBUG_LOCK_ALLOC=y",
        "CONFIG_DEBUG_SPINLOCK=y",
        "CONFIG_DEBUG_MUTEXES=y",
        "CONFIG_DEBUG_ATOMIC_SLEEP=y",
        # OCFS2 and the DLMs
        "CONFIG_OCFS2_DEBUG_MASKLOG=y",
        "CONFIG_OCFS2_DEBUG_FS=y",
        "CONFIG_DLM_DEBUG=y",
    ),
}


@frozen
class KernelRecipe:
    """What the lab kernel is built from. Equal recipes give equal kernels (same
    [`key`][ocfs2lab.vm.recipe.KernelRecipe.key]).

    Attributes:
        source_package: Debian's kernel source package (``linux-source-6.12`` for trixie).
        gcov_dirs: Directories of the tree compiled with gcov counters (subdirectories too).
        patches: Unified diffs or ``git format-patch`` files, applied in order (``patch
            -p1``) on the source (Debian's, or ``tree``). The key covers their names and
            content.
        tree: A local Linux git checkout to build instead of Debian's source. It is only
            read (its files are copied into the lab's work tree); the key covers its HEAD
            commit and a hash of its uncommitted changes.
        config: Extra ``.config`` lines (``CONFIG_X=y``, ``# CONFIG_X is not set``), checked
            after ``make olddefconfig`` like the lab's fragment.
        profile: A named set of lines (`CONFIG_PROFILES`): ``debug`` turns on lockdep,
            ``DEBUG_ATOMIC_SLEEP`` and the OCFS2 and DLM debug options.
        build_version: Version of the build logic (`KERNEL_BUILD_VERSION`).
        jobs: ``make -j`` (default: the number of CPUs); not part of the key.

    Raises:
        SpecError: A field breaks its rule: a patch that is missing or not a diff, a tree
            that is not a Linux git checkout, a malformed config line, an unknown profile.
    """

    source_package: str = field(default=SOURCE_PACKAGES["trixie"], validator=_check_source)
    gcov_dirs: tuple[str, ...] = field(
        default=DEFAULT_GCOV_DIRS, converter=_dirs, validator=_check_dirs
    )
    patches: tuple[Path, ...] = field(default=(), converter=_patch_paths, validator=_check_patches)
    tree: Path | None = field(default=None, converter=_tree_path, validator=_check_tree)
    config: tuple[str, ...] = field(default=(), converter=_config_lines, validator=_check_config)
    profile: str | None = field(default=None, validator=_check_profile)
    build_version: int = KERNEL_BUILD_VERSION
    jobs: int | None = field(default=None, validator=_check_jobs, eq=False)

    @classmethod
    def for_release(cls, release: str) -> KernelRecipe:
        """The recipe for a Debian release's own kernel source."""
        try:
            return cls(source_package=SOURCE_PACKAGES[release])
        except KeyError:
            raise SpecError(
                "kernel.release", release, f"must be one of {', '.join(SOURCE_PACKAGES)}"
            ) from None

    @property
    def series(self) -> str:
        """The kernel series, ``6.12`` for ``linux-source-6.12``."""
        return self.source_package.removeprefix("linux-source-")

    def fragment(self) -> str:
        """The text of the lab's configuration fragment."""
        return (VM_ASSETS / FRAGMENT_ASSET).read_text()

    def config_lines(self) -> tuple[str, ...]:
        """The lines added to the lab's fragment: the profile's, then ``config``."""
        profile = CONFIG_PROFILES[self.profile] if self.profile else ()
        return profile + self.config

    def config_text(self) -> str:
        """The whole fragment the build merges: the lab's, the profile's and ``config``."""
        extra = "\n".join(self.config_lines())
        if not extra:
            return self.fragment()
        return self.fragment() + "\n# ocfs2lab: the recipe's lines\n" + extra + "\n"

    def work_material(self) -> dict[str, Any]:
        """What decides the configuration and the build logic (not the source files): kernels
        that agree on it share a work tree, whose objects a rebuild reuses."""
        return {
            "source_package": self.source_package,
            "gcov_dirs": list(self.gcov_dirs),
            "build_version": self.build_version,
            "config": hashlib.sha256(self.config_text().encode()).hexdigest(),
        }

    def work_name(self) -> str:
        """``<series>-<16 hex digits>``: the name of the work tree of this configuration."""
        text = json.dumps(self.work_material(), sort_keys=True, separators=(",", ":"))
        return f"{self.series}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def patch_list(self) -> list[dict[str, str]]:
        """The patches in order: ``{"name", "path", "sha256"}``."""
        return [
            {"name": p.name, "path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for p in self.patches
        ]

    def key_material(self, tree: TreeState | None = None) -> dict[str, Any]:
        """Everything the key hashes (``tree``: the tree's state, read now when not given)."""
        if self.tree is not None and tree is None:
            tree = tree_state(self.tree)
        return {
            "work": self.work_material(),
            "patches": [{"name": p["name"], "sha256": p["sha256"]} for p in self.patch_list()],
            "tree": None
            if tree is None
            else {"commit": tree.commit, "changes_sha256": tree.changes_sha256},
        }

    def key(self, tree: TreeState | None = None) -> str:
        """A hex digest of the configuration, the build logic, the patches and the tree's
        commit and uncommitted changes (``jobs`` aside)."""
        text = json.dumps(self.key_material(tree), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def short_name(self, tree: TreeState | None = None) -> str:
        """``<series>-<first 16 hex digits of the key>``: the kernel's directory name."""
        return f"{self.series}-{self.key(tree)[:16]}"

    def provenance(self, tree: TreeState | None = None) -> dict[str, Any]:
        """What a report says of the kernel's making: the key, source, patches (names and
        SHA-256), the tree's commit and dirty flag, the profile and the extra lines."""
        if self.tree is not None and tree is None:
            tree = tree_state(self.tree)
        return {
            "key": self.key(tree),
            "source": self.source_package if self.tree is None else str(self.tree),
            "patches": [{"name": p["name"], "sha256": p["sha256"]} for p in self.patch_list()],
            "tree": None
            if tree is None
            else {"path": tree.path, "commit": tree.commit, "dirty": tree.dirty},
            "profile": self.profile,
            "config": list(self.config),
        }


def _default_kernel(release: str) -> KernelRecipe | None:
    source = SOURCE_PACKAGES.get(release)
    return KernelRecipe(source_package=source) if source else None


@frozen
class ImageRecipe:
    """What goes into a lab image. Equal recipes give equal images (same
    [`key`][ocfs2lab.vm.recipe.ImageRecipe.key]).

    Attributes:
        release: Debian release (``trixie`` and ``bookworm`` are tested).
        mirror: Debian mirror URL.
        kernel: The kernel the lab builds and boots: the release's ``linux-source`` with gcov
            of OCFS2 and DRBD ([`KernelRecipe`][ocfs2lab.vm.recipe.KernelRecipe], the default;
            trixie is tested), or
            ``None`` for Debian's packaged kernel (``linux-image-amd64``, no coverage).
        packages: Packages of the lab VM (sorted, duplicates removed); the default depends
            on the release and the kernel
            ([`default_packages`][ocfs2lab.vm.recipe.default_packages]).
        node_packages: Packages of the Docker node image's root file system.
        disk_size_mib: Size of the root file system (a sparse file; the overlay of each VM
            grows on demand).
        build_version: Version of the build logic (`IMAGE_BUILD_VERSION`).

    Raises:
        SpecError: A field breaks its rule.
    """

    release: str = field(default="trixie", validator=_check_release)
    mirror: str = field(default=DEFAULT_MIRROR, validator=_check_mirror)
    kernel: KernelRecipe | None = field(
        default=attrs.Factory(lambda self: _default_kernel(self.release), takes_self=True),
        validator=attrs.validators.optional(attrs.validators.instance_of(KernelRecipe)),
    )
    packages: tuple[str, ...] = field(
        default=attrs.Factory(
            lambda self: default_packages(self.release, debian_kernel=self.kernel is None),
            takes_self=True,
        ),
        converter=_packages,
        validator=_check_packages,
    )
    node_packages: tuple[str, ...] = field(
        default=DEFAULT_NODE_PACKAGES, converter=_packages, validator=_check_packages
    )
    disk_size_mib: int = field(default=8192, validator=_check_disk)
    build_version: int = field(default=IMAGE_BUILD_VERSION, validator=_check_version)

    def __attrs_post_init__(self) -> None:
        images = [p for p in self.packages if p.startswith("linux-image-")]
        if self.kernel is not None and images:
            raise SpecError(
                "recipe.packages",
                images[0],
                "must not hold a kernel package when the recipe builds its kernel",
                hint="drop it, or pass kernel=None to boot Debian's kernel",
            )
        if self.kernel is None and not images:
            raise SpecError(
                "recipe.packages",
                ", ".join(self.packages)[:80],
                f"needs a kernel package ({DEBIAN_KERNEL_PACKAGE}) when kernel is None",
            )

    def key_material(self) -> dict[str, Any]:
        """Everything the key hashes: the fields and the content of every asset file."""
        assets = asset_files(VM_ASSETS, NODE_ASSETS, PROBE_ASSETS)
        # The kernel's fragment counts through the kernel's own key, and only when it is built.
        assets.pop(f"{VM_ASSETS.parent.name}/{FRAGMENT_ASSET}", None)
        fields = attrs.asdict(self, recurse=False)
        # The root file system is the same whatever lab kernel boots it: the kernel and its
        # modules travel apart (its own directory, a modules disk). Only the choice between
        # a lab kernel and Debian's packaged one changes the image.
        fields["kernel"] = "lab" if self.kernel is not None else "debian"
        return {
            "recipe": fields,
            "assets": {name: hashlib.sha256(data).hexdigest() for name, data in assets.items()},
        }

    def key(self) -> str:
        """A hex digest of everything that affects the built image.

        It covers the recipe's fields (packages normalised: order and duplicates do not
        matter), the build logic's version and the content of every file under
        ``ocfs2lab/vm/assets`` and ``ocfs2lab/node/assets``.
        """
        text = json.dumps(self.key_material(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def short_name(self) -> str:
        """``<release>-<first 16 hex digits of the key>``: the image's directory name."""
        return f"{self.release}-{self.key()[:16]}"


def _path(value: str | os.PathLike[str]) -> Path:
    return Path(value)


#: Label of the modules disk that carries a lab kernel's modules; the image's fstab mounts
#: it on ``/usr/lib/modules`` (read-only).
MODULES_LABEL = "ocfs2lab-mods"


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


@frozen
class LabImage:
    """A built lab image and the kernel it boots (read-only: machines boot from per-VM
    overlays on top of it).

    Attributes:
        root_disk: Raw ext4 image of the root file system (label `ROOT_LABEL`).
        kernel: The kernel (``vmlinuz`` or a lab kernel's ``bzImage``) to boot with
            ``-kernel``.
        initrd: Its initramfs (Debian's kernel); ``None`` for a lab kernel, which has the
            root disk's drivers built in and boots ``root=/dev/vda`` directly.
        recipe: The recipe it was built from.
        root_label: File system label of ``root_disk``.
        modules_disk: A lab kernel's modules as a small ext4 disk (label
            `MODULES_LABEL`), attached read-only; ``None`` for Debian's kernel, whose
            modules are in the root file system.
        kernel_provenance: What the kernel was made of
            ([`KernelRecipe.provenance`][ocfs2lab.vm.recipe.KernelRecipe.provenance] and
            its release), empty for Debian's kernel.
    """

    root_disk: Path = field(converter=_path)
    kernel: Path = field(converter=_path)
    initrd: Path | None = field(converter=_optional_path)
    recipe: ImageRecipe = field(validator=attrs.validators.instance_of(ImageRecipe))
    root_label: str = ROOT_LABEL
    modules_disk: Path | None = field(default=None, converter=_optional_path)
    kernel_provenance: dict[str, Any] = field(factory=dict, eq=False)

    @property
    def directory(self) -> Path:
        """The directory holding the image's files."""
        return self.root_disk.parent

    @classmethod
    def in_directory(cls, directory: Path, recipe: ImageRecipe) -> LabImage:
        """The image whose files are laid out in ``directory`` the way builds lay them out
        (Debian's kernel: ``vmlinuz`` and ``initrd.img`` beside the root disk)."""
        return cls(
            root_disk=directory / "root.img",
            kernel=directory / "vmlinuz",
            initrd=directory / "initrd.img",
            recipe=recipe,
        )

    def with_kernel(
        self, bzimage: Path, modules_disk: Path, provenance: dict[str, Any] | None = None
    ) -> LabImage:
        """This root file system booting a lab kernel (its ``bzImage`` and modules disk)."""
        return attrs.evolve(
            self,
            kernel=bzimage,
            initrd=None,
            modules_disk=modules_disk,
            kernel_provenance=dict(provenance or {}),
        )

    def files(self) -> tuple[Path, ...]:
        """Every file a machine booting this image reads."""
        return tuple(
            p
            for p in (self.root_disk, self.kernel, self.initrd, self.modules_disk)
            if p is not None
        )

    def exists(self) -> bool:
        """True when all of the image's files are present."""
        return all(p.is_file() for p in self.files())


def cache_root() -> Path:
    """The lab's cache directory.

    ``$OCFS2LAB_CACHE`` when set, else ``$XDG_CACHE_HOME/ocfs2lab``, else
    ``~/.cache/ocfs2lab``. Images live in ``images/``, debootstrap's package cache in
    ``debs/``, running machines' files in ``run/``.
    """
    explicit = os.environ.get("OCFS2LAB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ocfs2lab"
