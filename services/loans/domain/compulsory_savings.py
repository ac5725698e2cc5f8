"""Compulsory savings a loan product requires before disbursement (a product setting).

Either a share of the principal (``share_of_principal`` = 0.10: 10 %) or a flat
``amount``, held in the client's compulsory savings (savings' product
``savings_product_id``, linked to this loan product) before the disbursement saga's
pivot. The saga computes the amount when the loan is approved and sends it as
``HoldCompulsorySavings.required``; savings holds exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.loans.domain.money import ZERO, is_cents, round_money
from shared.errors import InvalidInput


@dataclass(frozen=True)
class CompulsorySavingsRule:
    share_of_principal: Decimal | None = None
    amount: Decimal | None = None
    savings_product_id: str | None = None

    def validate(self) -> None:
        if (self.share_of_principal is None) == (self.amount is None):
            raise InvalidInput("give either share_of_principal or amount",
                               field="share_of_principal")
        share = self.share_of_principal
        if share is not None and not ZERO < share <= 1:
            raise InvalidInput("share_of_principal is a fraction above 0, at most 1",
                               field="share_of_principal")
        if self.amount is not None and (self.amount <= 0 or not is_cents(self.amount)):
            raise InvalidInput("amount is positive, in centimes", field="amount")

    def required(self, principal: Decimal) -> Decimal:
        """What must be held for a loan of ``principal`` (half up to the centime)."""
        if self.amount is not None:
            return self.amount
        assert self.share_of_principal is not None
        return round_money(principal * self.share_of_principal)
