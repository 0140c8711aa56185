"""Specs of the storage: the DRBD resource, the heartbeat region and the OCFS2 volume."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from attrs import Attribute, Factory, field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.spec import rules

MiB = 1 << 20
GiB = 1 << 30
#: Below this a DRBD-backed OCFS2 volume has no room for journals of a few slots.
MIN_DRBD_SIZE = 256 * MiB


def _min_size(minimum: int) -> Any:
    def check(instance: object, attribute: Attribute[Any], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SpecError(rules.label(instance, attribute), value, "must be a size above zero")
        if value < minimum:
            raise SpecError(
                rules.label(instance, attribute),
                value,
                f"must be at least {minimum // MiB} MiB",
            )

    return check


@frozen
class DrbdSpec:
    """A single-node DRBD resource on a loop-backed file (the seed's shared device).

    Attributes:
        name: Resource name (also names the ``.res`` file).
        minor: DRBD minor; the device is ``/dev/drbd<minor>``.
        size: Size of the backing file in bytes (``"4G"`` accepted); default 4 GiB.
        backing_file: Path of the backing file on the host.
        config_dir: Where the resource file is written (``/etc/drbd.d``).
        port: TCP port in the resource file (used once peers exist).
    """

    name: str = field(default="ocfs2-resource", validator=rules.resource_name)
    minor: int = field(default=0, validator=rules.in_range(0, rules.MAX_DRBD_MINOR))
    size: int = field(
        default=4 * GiB, converter=rules.size_converter, validator=_min_size(MIN_DRBD_SIZE)
    )
    backing_file: str = field(
        default=Factory(lambda self: f"/var/lib/drbd/{self.name}_backing.img", takes_self=True),
        validator=rules.absolute_path,
    )
    config_dir: str = field(default="/etc/drbd.d", validator=rules.absolute_path)
    port: int = field(default=7789, validator=rules.in_range(1, 65535))

    @property
    def device(self) -> str:
        """The DRBD block device path."""
        return f"/dev/drbd{self.minor}"

    @property
    def resource_file(self) -> str:
        """Path of the resource file."""
        return f"{self.config_dir}/{self.name}.res"


HeartbeatMode = Literal["local", "global"]


@frozen
class HeartbeatSpec:
    """Where o2hb writes heartbeats.

    ``local`` mode: the region is the OCFS2 volume itself and heartbeat starts at mount.
    ``global`` mode: a separate region (a device or a file) shared by all nodes, started
    with ``o2cb start-heartbeat``. The seed tries local mode on the device and falls back
    to global mode with a file region when that fails.

    Attributes:
        mode: ``"local"`` or ``"global"``.
        device: The block device of the region (local mode: the volume's device).
        region_file: For a global file region, the file's path on every node.
        region_size: Size of a file region in bytes.
        fallback_to_global: Try global mode with ``region_file`` if local mode fails.
    """

    mode: HeartbeatMode = field(default="local", validator=rules.one_of("local", "global"))
    device: str | None = field(default=None)
    region_file: str = field(default="/tmp/o2hb_region.img", validator=rules.absolute_path)
    region_size: int = field(
        default=64 * MiB, converter=rules.size_converter, validator=_min_size(1 * MiB)
    )
    fallback_to_global: bool = True

    def __attrs_post_init__(self) -> None:
        if self.device is not None:
            rules.absolute_path(self, rules.attribute(HeartbeatSpec, "device"), self.device)


def _power_of_two(low: int, high: int) -> Any:
    def check(instance: object, attribute: Attribute[Any], value: int | None) -> None:
        if value is None:
            return
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or not low <= value <= high or value & (value - 1):
            raise SpecError(
                rules.label(instance, attribute),
                value,
                f"must be a power of two from {low} to {high} (mkfs.ocfs2's limits)",
            )

    return check


def str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@frozen
class VolumeSpec:
    """An OCFS2 file system: how to format and where to mount it.

    Attributes:
        label: Volume label (default ``ocfs2vol``), at most 63 bytes.
        slots: Node slots; None means one per cluster node.
        block_size: 512 to 4096 bytes, or None for mkfs.ocfs2's choice.
        cluster_size: 4 KiB to 1 MiB, or None for mkfs.ocfs2's choice.
        mount_point: Where every node mounts it.
        mount_options: Extra ``-o`` options.
        journal_size: Journal size per slot in bytes, or None for mkfs.ocfs2's choice.
    """

    label: str = field(default="ocfs2vol")
    slots: int | None = field(default=None)
    block_size: int | None = field(default=None, validator=_power_of_two(512, 4096))
    cluster_size: int | None = field(default=None, validator=_power_of_two(4096, 1 << 20))
    mount_point: str = field(default="/mnt/ocfs2", validator=rules.absolute_path)
    mount_options: tuple[str, ...] = field(default=(), converter=str_tuple)
    journal_size: int | None = field(default=None)

    def __attrs_post_init__(self) -> None:
        lab = self.label
        if not isinstance(lab, str) or not lab or len(lab.encode()) > rules.VOLUME_LABEL_MAX:
            raise SpecError("volume.label", lab, f"must be 1 to {rules.VOLUME_LABEL_MAX} bytes")
        if any(c in lab for c in "\0\n/"):
            raise SpecError("volume.label", lab, "cannot contain NUL, newline or '/'")
        if self.slots is not None:
            rules.in_range(1, rules.MAX_SLOTS, "OCFS2_MAX_SLOTS")(
                self, rules.attribute(VolumeSpec, "slots"), self.slots
            )
        if self.journal_size is not None:
            _min_size(4 * MiB)(self, rules.attribute(VolumeSpec, "journal_size"), self.journal_size)
        for opt in self.mount_options:
            if not isinstance(opt, str) or not opt or "," in opt or any(c.isspace() for c in opt):
                raise SpecError(
                    "volume.mount_options", opt, "each option is one word without ',' or spaces"
                )
