"""Progressive lending: credit limits by cycle, exposure, and reservation decisions.

Exposure is what the client could owe us: credit reserved for loans on their way
to disbursement plus the outstanding principal of disbursed loans. A reservation
is granted only when KYC is verified, the client is not blocked, and exposure +
amount stays within the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, cast

RejectReason = Literal["kyc_not_verified", "client_blocked", "limit_exceeded", "unknown_client",
                       "client_in_arrears", "written_off_loan"]
Move = Literal["grow", "keep", "shrink"]


@dataclass(frozen=True)
class BehaviourBand:
    """Up to ``max_days`` worst days in arrears during a cycle: what the limit does."""

    max_days: int | None
    """None: any number of days (the last band)."""
    move: Move


DEFAULT_BEHAVIOUR: tuple[BehaviourBand, ...] = (
    BehaviourBand(7, "grow"), BehaviourBand(30, "keep"), BehaviourBand(None, "shrink"))
"""Repaid never more than 7 days late: grow; 8 to 30: keep; later than 30: shrink."""


def parse_behaviour(table: str) -> tuple[BehaviourBand, ...]:
    """``"7:grow,30:keep,*:shrink"`` (the configuration's form) as bands, checked."""
    bands: list[BehaviourBand] = []
    for part in table.split(","):
        limit, _, move = part.strip().partition(":")
        if move not in ("grow", "keep", "shrink"):
            raise ValueError(f"{part!r}: the move is grow, keep or shrink")
        bands.append(BehaviourBand(None if limit.strip() == "*" else int(limit),
                                   cast(Move, move)))
    check_behaviour(tuple(bands))
    return tuple(bands)


def check_behaviour(bands: tuple[BehaviourBand, ...]) -> None:
    if not bands or bands[-1].max_days is not None:
        raise ValueError("the behaviour table ends with a band for any days ('*')")
    bounds = [b.max_days for b in bands[:-1]]
    known = [b for b in bounds if b is not None]
    if len(known) != len(bounds) or any(b < 0 for b in known) or known != sorted(set(known)):
        raise ValueError("the behaviour bands' days are increasing, non-negative numbers")


def move_for(bands: tuple[BehaviourBand, ...], worst_days_in_arrears: int) -> Move:
    """What the worst days in arrears of a cycle does to the limit."""
    for band in bands:
        if band.max_days is None or worst_days_in_arrears <= band.max_days:
            return band.move
    return bands[-1].move


@dataclass(frozen=True)
class LimitPolicy:
    """First-cycle limit, the step added per loan repaid in full, and the cap."""

    first_cycle_limit: Decimal
    step: Decimal
    cap: Decimal
    behaviour: tuple[BehaviourBand, ...] = DEFAULT_BEHAVIOUR
    """Grow, keep or shrink after a cycle, by its worst days in arrears."""

    def __post_init__(self) -> None:
        check_behaviour(self.behaviour)
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
                       account: CreditAccount | None, amount: Decimal,
                       loans_in_arrears: int = 0, written_off_hold: bool = False
                       ) -> Granted | Refused:
    """Decide a ``ReserveCredit``: the new account state, or why it is refused.

    A client with a loan in arrears, or with a written-off loan whose hold no operator
    has lifted, gets no new credit."""
    if kyc_status is None or account is None:
        return Refused("unknown_client", "no such client")
    if kyc_status != "verified":
        return Refused("kyc_not_verified", f"KYC status is {kyc_status}")
    if blocked:
        return Refused("client_blocked", "the client is blocked")
    if written_off_hold:
        return Refused("written_off_loan", "the client has a written-off loan; an operator "
                       "must lift the hold (maker-checker) before new credit")
    if loans_in_arrears > 0:
        return Refused("client_in_arrears",
                       f"the client has {loans_in_arrears} loan(s) in arrears")
    if amount <= 0:
        raise ValueError("a reservation amount is positive")
    if account.exposure + amount > account.credit_limit:
        return Refused("limit_exceeded",
                       f"exposure {account.exposure} + {amount} exceeds the limit "
                       f"{account.credit_limit} (available {account.available})")
    return Granted(CreditAccount(account.client_id, account.credit_limit, account.cycle,
                                 account.reserved + amount, account.outstanding))


def after_loan_closed(account: CreditAccount, policy: LimitPolicy,
                      worst_days_in_arrears: int = 0) -> CreditAccount:
    """A loan repaid in full ends a cycle; how it was repaid decides the limit.

    ``grow``: next cycle, its limit (never below the current one). ``keep``: same cycle,
    same limit. ``shrink``: one cycle down (never below 1), that cycle's limit (never
    above the current one).
    """
    move = move_for(policy.behaviour, worst_days_in_arrears)
    if move == "grow":
        cycle = account.cycle + 1
        limit = max(policy.limit_for_cycle(cycle), account.credit_limit)
    elif move == "keep":
        cycle, limit = account.cycle, account.credit_limit
    else:
        cycle = max(account.cycle - 1, 1)
        limit = min(policy.limit_for_cycle(cycle), account.credit_limit)
    return CreditAccount(account.client_id, limit, cycle, account.reserved,
                         account.outstanding)
