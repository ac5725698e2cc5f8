"""The payments consumer group: the saga's commands and the loans service's answers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from services.payments.deps import Deps
from services.payments.handlers.payouts import on_disburse_loan
from services.payments.handlers.repayments import (
    on_loan_written_off,
    on_repayment_applied,
    on_repayment_rejected,
)
from shared.app import ConsumerSpec
from shared.contracts import loans, payments
from shared.envelope import Envelope
from shared.uow import UnitOfWork

Bound = Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]


def consumer_specs(deps: Deps) -> list[ConsumerSpec]:
    def bind(fn: Callable[..., Awaitable[None]]) -> Bound:
        return functools.partial(fn, deps)

    return [ConsumerSpec(
        group="payments",
        topics=[payments.COMMANDS, loans.EVENTS],
        handlers={
            "DisburseLoan": bind(on_disburse_loan),
            "RepaymentApplied": bind(on_repayment_applied),
            "RepaymentRejected": bind(on_repayment_rejected),
            "LoanWrittenOff": bind(on_loan_written_off),
        },
    )]
