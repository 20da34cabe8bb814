"""What the reward context needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from reward.domain import Loyalty


class LoyaltyView(Protocol):
    def get(self, rider_id: str) -> Loyalty: ...
