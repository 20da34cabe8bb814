"""Money as the API shows it: a decimal string with two places and a currency."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, field_validator

CENT = Decimal("0.01")


class Money(BaseModel):
    """``{"amount": "23.40", "currency": "EUR"}``."""

    model_config = ConfigDict(frozen=True)

    amount: str
    currency: str = "EUR"

    @field_validator("amount")
    @classmethod
    def _two_places(cls, value: str) -> str:
        return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))

    @classmethod
    def of(cls, amount: Decimal | float | str, currency: str = "EUR") -> Money:
        """Round to cents."""
        return cls(amount=str(Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)), currency=currency)

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)
