"""The GMP pack's states: a material lot's disposition."""

from __future__ import annotations

from enum import StrEnum


class LotStatus(StrEnum):
    """A material lot's disposition (``gmp.lots``): created in quarantine, released or rejected once by
    its ``lot_disposition`` instance. ``EXPIRED`` is never stored: a released lot reads expired from the day
    after its expiry date."""

    QUARANTINE = "quarantine"
    RELEASED = "released"
    REJECTED = "rejected"
    EXPIRED = "expired"


LOT_DISPOSITIONS: dict[LotStatus, frozenset[LotStatus]] = {
    LotStatus.QUARANTINE: frozenset({LotStatus.RELEASED, LotStatus.REJECTED}),
}
