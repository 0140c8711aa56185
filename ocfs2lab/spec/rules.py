"""Validators and converters shared by the specs.

Each validator raises [`SpecError`][ocfs2lab.errors.SpecError] naming the field (``cluster.name``),
the value and the rule it breaks. The limits are the kernel's and the tools' own; each names
its source.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from attrs import Attribute, fields

from ocfs2lab.errors import SpecError

#: ocfs2-tools ``o2cbtool_validate_clustername``: at most 16 characters, alphanumeric only.
CLUSTER_NAME_MAX = 16
#: Kernel ``O2NM_MAX_NODES``: node numbers 0..254.
MAX_NODE_NUMBER = 254
#: Kernel ``O2NM_MAX_NAME_LEN`` (64, NUL excluded from what fits).
NODE_NAME_MAX = 63
#: ``OCFS2_MAX_SLOTS``: at most 255 node slots in a volume, so at most 255 nodes mount it.
MAX_SLOTS = 255
#: ``OCFS2_MAX_VOL_LABEL_LEN`` (64 bytes including the NUL).
VOLUME_LABEL_MAX = 63
#: Kernel ``O2HB_MIN_DEAD_THRESHOLD``: smaller writes are silently ignored.
MIN_DEAD_THRESHOLD = 3
#: DRBD minors are 20-bit.
MAX_DRBD_MINOR = (1 << 20) - 1

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 1000**4,
    "tib": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
_DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def attribute(cls: type, name: str) -> Attribute[Any]:
    """The attrs attribute ``name`` of class ``cls``, for validating outside a field."""
    found: Attribute[Any] = getattr(fields(cls), name)
    return found


def label(instance: object, attribute: Attribute[Any]) -> str:
    """The field name used in errors: ``cluster.name`` for ``ClusterSpec.name``."""
    owner = type(instance).__name__.removesuffix("Spec")
    owner = re.sub(r"(?<!^)(?=[A-Z])", "_", owner).lower()
    return f"{owner}.{attribute.name}"


def parse_size(value: int | str) -> int:
    """Turn ``4G``, ``512MiB``, ``1.5GB`` or a number of bytes into bytes.

    Binary units for ``K``/``M``/``G``/``T`` and ``KiB``...; decimal for ``KB``/``MB``...

    Raises:
        SpecError: Not a size.
    """
    if isinstance(value, bool):
        raise SpecError("size", value, "must be a number of bytes or a string like '4G'")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != int(value):
            raise SpecError("size", value, "must be a whole number of bytes")
        return int(value)
    if not isinstance(value, str):
        raise SpecError("size", value, "must be a number of bytes or a string like '4G'")
    m = _SIZE.match(value)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise SpecError("size", value, "must look like 4G, 512MiB, 1.5GB or a number of bytes")
    result = float(m.group(1)) * _UNITS[unit]
    if result != int(result):
        raise SpecError("size", value, "must come to a whole number of bytes")
    return int(result)


def size_converter(value: int | str) -> int:
    """attrs converter for byte sizes (see `parse_size`)."""
    return parse_size(value)


def positive(instance: object, attribute: Attribute[Any], value: int | float) -> None:
    """The value must be greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SpecError(label(instance, attribute), value, "must be greater than zero")


def in_range(low: int, high: int, why: str = "") -> Callable[[object, Attribute[Any], int], None]:
    """The value must be an integer in ``low..high`` inclusive."""

    def check(instance: object, attribute: Attribute[Any], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            rule = f"must be an integer from {low} to {high}"
            raise SpecError(label(instance, attribute), value, rule + (f" ({why})" if why else ""))

    return check


def number_in(low: float, high: float) -> Callable[[object, Attribute[Any], int | float], None]:
    """The value must be a number (integer or float) in ``low..high`` inclusive."""

    def check(instance: object, attribute: Attribute[Any], value: int | float) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise SpecError(
                label(instance, attribute), value, f"must be a number from {low} to {high}"
            )

    return check


def one_of(*choices: object) -> Callable[[object, Attribute[Any], object], None]:
    """The value must be one of ``choices``."""

    def check(instance: object, attribute: Attribute[Any], value: object) -> None:
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise SpecError(label(instance, attribute), value, f"must be one of {shown}")

    return check


def cluster_name(instance: object, attribute: Attribute[Any], value: str) -> None:
    """o2cb's rule: 1 to 16 characters, letters and digits only."""
    if not isinstance(value, str) or not value or len(value) > CLUSTER_NAME_MAX:
        raise SpecError(
            label(instance, attribute),
            value,
            f"must be 1 to {CLUSTER_NAME_MAX} characters (o2cb's limit)",
        )
    if not value.isascii() or not value.isalnum():
        raise SpecError(
            label(instance, attribute),
            value,
            "may contain only letters and digits (o2cb rejects '-', '_', '.' and spaces)",
        )


def hostname(instance: object, attribute: Attribute[Any], value: str) -> None:
    """A host name label: letters, digits and inner hyphens, 1 to 63 characters."""
    if not isinstance(value, str) or not _HOSTNAME.match(value) or len(value) > NODE_NAME_MAX:
        raise SpecError(
            label(instance, attribute),
            value,
            f"must be a host name: 1 to {NODE_NAME_MAX} letters, digits and inner hyphens "
            "(o2cb matches it against the node's hostname up to the first dot)",
        )


def docker_name(instance: object, attribute: Attribute[Any], value: str) -> None:
    """Docker's rule for network and container names."""
    if not isinstance(value, str) or not _DOCKER_NAME.match(value):
        raise SpecError(
            label(instance, attribute),
            value,
            "must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
        )


def resource_name(instance: object, attribute: Attribute[Any], value: str) -> None:
    """A DRBD resource name (also used in file names)."""
    if not isinstance(value, str) or not _RESOURCE_NAME.match(value) or len(value) > 64:
        raise SpecError(
            label(instance, attribute),
            value,
            "must be 1 to 64 letters, digits, '_', '.', '+', '-', starting with a letter or digit",
        )


def absolute_path(instance: object, attribute: Attribute[Any], value: str) -> None:
    """An absolute path without NUL, newline or '..' components."""
    parts = value.split("/") if isinstance(value, str) else []
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or "\0" in value
        or "\n" in value
        or ".." in parts
    ):
        raise SpecError(
            label(instance, attribute), value, "must be an absolute path without '..' or newlines"
        )


def ipv4_address(field_name: str) -> Callable[[object], ipaddress.IPv4Address]:
    """attrs converter for ``field_name``: an IPv4 address from text or an address object."""

    def convert(value: object) -> ipaddress.IPv4Address:
        try:
            return ipaddress.IPv4Address(value)  # type: ignore[arg-type,unused-ignore]
        except (ValueError, TypeError) as err:
            raise SpecError(field_name, value, "must be an IPv4 address like 172.20.0.11") from err

    return convert


def ipv4_network(field_name: str) -> Callable[[object], ipaddress.IPv4Network]:
    """attrs converter for ``field_name``: an IPv4 network in CIDR form, host bits zero."""

    def convert(value: object) -> ipaddress.IPv4Network:
        try:
            return ipaddress.IPv4Network(value)  # type: ignore[arg-type,unused-ignore]
        except (ValueError, TypeError) as err:
            raise SpecError(
                field_name, value, "must be an IPv4 network in CIDR form like 172.20.0.0/16"
            ) from err

    return convert
