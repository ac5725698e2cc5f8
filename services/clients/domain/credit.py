"""Progressive lending: credit limits by cycle, exposure, and reservation decisions.

Exposure is what the client could owe us: credit reserved for loans on their way
to disbursement plus the outstanding principal of disbursed loans. A reservation
is granted only when KYC is verified, the client is not blocked, and exposure +
amount stays within the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

RejectReason = Literal["kyc_not_verified", "client_blocked", "limit_exceeded", "unknown_client"]


@dataclass(frozen=True)
class LimitPolicy:
    """First-cycle limit, the step added per loan repaid in full, and the cap."""

    first_cycle_limit: Decimal
    step: Decimal
    cap: Decimal

    def __post_init__(self) -> None:
        if self.first_cycle_limit <= 0:
            raise ValueError("the first-cycle limit must be positive")
        if self.step < 0:
            raise ValueError("the limit step cannot be negative")
        if self.cap < self.first_cycle_limit:
            raise ValueError("the limit cap cannot be below the first-cycle limit")

    def limit_for_cycle(self, cycle: int) -> Decimal:
        """Limit of a client in ``cycle`` (1 = first loan; +1 per loan repaid in full)."""
        if cycle < 1:
            raise ValueError("cycles start at 1")
        return min(self.first_cycle_limit + self.step * (cycle - 1), self.cap)


@dataclass(frozen=True)
class CreditAccount:
    client_id: str
    credit_limit: Decimal
    cycle: int
    reserved: Decimal
    outstanding: Decimal

    @property
    def exposure(self) -> Decimal:
        return self.reserved + self.outstanding

    @property
    def available(self) -> Decimal:
        return max(self.credit_limit - self.exposure, Decimal("0.00"))


@dataclass(frozen=True)
class Granted:
    account: CreditAccount


@dataclass(frozen=True)
class Refused:
    reason: RejectReason
    detail: str


def decide_reservation(*, kyc_status: str | None, blocked: bool,
                       account: CreditAccount | None, amount: Decimal) -> Granted | Refused:
    """Decide a ``ReserveCredit``: the new account state, or why it is refused."""
    if kyc_status is None or account is None:
        return Refused("unknown_client", "no such client")
    if kyc_status != "verified":
        return Refused("kyc_not_verified", f"KYC status is {kyc_status}")
    if blocked:
        return Refused("client_blocked", "the client is blocked")
    if amount <= 0:
        raise ValueError("a reservation amount is positive")
    if account.exposure + amount > account.credit_limit:
        return Refused("limit_exceeded",
                       f"exposure {account.exposure} + {amount} exceeds the limit "
                       f"{account.credit_limit} (available {account.available})")
    return Granted(CreditAccount(account.client_id, account.credit_limit, account.cycle,
                                 account.reserved + amount, account.outstanding))


def after_loan_closed(account: CreditAccount, policy: LimitPolicy) -> CreditAccount:
    """A loan repaid in full moves the client to the next cycle and its limit."""
    cycle = account.cycle + 1
    return CreditAccount(account.client_id, max(policy.limit_for_cycle(cycle),
                                                account.credit_limit),
                         cycle, account.reserved, account.outstanding)
