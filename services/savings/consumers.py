"""The savings consumer group: clients' events (the projection), payments' replies and
wallet deposits, loans' closures (compulsory savings freed), due installments (standing
instructions), group loans and overdue installments (the group's compulsory savings
covering a member's arrears), and its own commands topic (the loans saga's compulsory
savings)."""

from __future__ import annotations

from services.savings.handlers.arrears_cover import ARREARS_HANDLERS
from services.savings.handlers.compulsory import COMMAND_HANDLERS
from services.savings.handlers.events import LOAN_HANDLERS, PROJECTION_HANDLERS, deposit_handler
from services.savings.handlers.standing import on_repayment_due_handler
from services.savings.handlers.withdrawals import reply_handlers
from shared.app import ConsumerSpec
from shared.clock import Clock, system_clock
from shared.contracts import clients, loans, payments, savings


def consumer_spec(clock: Clock = system_clock) -> ConsumerSpec:
    return ConsumerSpec(
        group="savings",
        topics=[clients.EVENTS, payments.EVENTS, loans.EVENTS, savings.COMMANDS],
        handlers={
            **PROJECTION_HANDLERS,
            **reply_handlers(clock),  # type: ignore[dict-item]
            "SavingsDepositReceived": deposit_handler(clock),
            **LOAN_HANDLERS,
            **ARREARS_HANDLERS,  # type: ignore[dict-item]
            "RepaymentDue": on_repayment_due_handler(clock),
            **COMMAND_HANDLERS,  # type: ignore[dict-item]
        },
    )
