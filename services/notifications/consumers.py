"""The notifications consumer group: the contact projection of clients.events, the
loan → client table, and every event that sends an SMS (loans, KYC, refunds)."""

from __future__ import annotations

from services.notifications.handlers import projection
from services.notifications.handlers.policies import Policies
from services.notifications.handlers.triggers import trigger_handler
from shared.app import ConsumerSpec
from shared.contracts import clients as c
from shared.contracts import loans as ln
from shared.contracts import payments as pay
from shared.inbox import Handler

# The events that send an SMS (domain/triggers.py says which template).
TRIGGERS = (ln.LoanDisbursed, ln.RepaymentApplied, ln.RepaymentDue, ln.LoanInArrears,
            ln.LoanDisbursementFailed, ln.LoanClosed, c.ClientKycVerified,
            c.ClientKycRejected, pay.RefundIssued)


def handler_table(policies: Policies) -> dict[str, Handler]:
    send = trigger_handler(policies)
    table: dict[str, Handler] = {
        "ClientRegistered": projection.client_registered_handler(policies),
        "ClientPhoneChanged": projection.on_phone_changed,
        "ClientLanguageChanged": projection.on_language_changed,
        "ClientConsentChanged": projection.on_consent_changed,
        "ClientBlocked": projection.on_blocked,
        "ClientUnblocked": projection.on_unblocked,
        "LoanSubmitted": projection.on_loan_event,
        "LoanApproved": projection.on_loan_event,
    }
    for contract in TRIGGERS:
        table[contract.type_name()] = send
    return table


def consumer_spec(policies: Policies) -> ConsumerSpec:
    return ConsumerSpec(
        group="notifications",
        topics=[c.EVENTS, ln.EVENTS, pay.EVENTS],
        handlers=handler_table(policies),
    )
