"""How a node's interconnect link is degraded: loss, delay with jitter, duplicates.

A [`LinkSpec`][ocfs2lab.spec.link.LinkSpec] is checked when it is made, so a bad value is
refused before any link is touched. The lab applies it outside the guest, in the node's
``wirefilter`` ([`LinkFilter`][ocfs2lab.vm.switch.LinkFilter]); the default spec is a clean
link.
"""

from __future__ import annotations

from typing import Any

from attrs import Attribute, asdict, field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.spec import rules

__all__ = ["CLEAN_LINK", "MAX_DUPLICATE_PCT", "LinkSpec"]

#: The highest duplication share: wirefilter duplicates its duplicates as well (a packet goes
#: 1/(1 - p) times on average), and at 100 nothing gets through any more (measured).
MAX_DUPLICATE_PCT = 50.0


def _within_delay(instance: LinkSpec, attribute: Attribute[Any], value: float) -> None:
    if value > instance.delay_ms:
        raise SpecError(
            rules.label(instance, attribute),
            value,
            f"must not exceed delay_ms ({instance.delay_ms})",
        )


@frozen
class LinkSpec:
    """A link's impairments, the same both ways.

    Attributes:
        loss_pct: Share of packets dropped, 0-100.
        delay_ms: Added one-way delay, up to a minute.
        jitter_ms: The delay varies uniformly by up to this much either way (at most
            ``delay_ms``).
        duplicate_pct: Share of packets duplicated, 0-50 (`MAX_DUPLICATE_PCT`).
    """

    loss_pct: float = field(default=0.0, validator=rules.number_in(0, 100))
    delay_ms: float = field(default=0.0, validator=rules.number_in(0, 60_000))
    jitter_ms: float = field(default=0.0, validator=[rules.number_in(0, 60_000), _within_delay])
    duplicate_pct: float = field(default=0.0, validator=rules.number_in(0, MAX_DUPLICATE_PCT))

    @property
    def clean(self) -> bool:
        """Nothing is degraded."""
        return not any(asdict(self).values())

    def to_json(self) -> dict[str, float]:
        """A JSON object."""
        return {k: float(v) for k, v in asdict(self).items()}


#: A link with no impairment.
CLEAN_LINK = LinkSpec()
