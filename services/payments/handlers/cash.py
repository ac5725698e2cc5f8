"""Branch cash: what loan officers collect on collection sheets, and each branch's
day-end count (``loans.events``).

- ``CashCollectionRecorded`` (keyed by loan): the collection is recorded as a repayment
  (``payments`` row, source and provider ``cash``, under a UUID derived from its
  ``collection_id``), booked Dr the branch's cash (``cash:branch:<branch>``) / Cr
  repayment suspense (``cash_collection:<collection id>``), and announced with
  ``RepaymentReceived`` (``payment_id`` = ``collection_id``, ``provider`` "cash",
  ``external_ref`` = ``sheet_id``, ``received_at`` = ``collected_at``) — once per
  ``collection_id``, whatever is redelivered or recorded again. From there it is a
  repayment like a wallet's: loans allocates it and payments moves it out of suspense
  (``handlers.repayments``); a rejected one has no wallet to go back to, so it is held
  in client payable (``RefundFailed``) for the branch to hand back.
- ``BranchCashReconciled`` (keyed by office): the difference declared - expected is
  booked between the branch's cash and its cash-difference suspense
  (``suspense:cash:branch:<office>``), ``cash_difference:<reconciliation id>``, once:
  a shortage debits the suspense and credits the cash, an overage the reverse; nothing
  when the count matches.

Both entries are booked to the office the event names (the loan's office for a
collection, so its suspense is cleared in the same office when loans allocates it; the
branch for a count), dated by the business date the cash was collected or counted.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from services.payments.domain import accounts as acc
from services.payments.domain import postings
from services.payments.domain.repayment_ids import payment_uuid
from services.payments.repository import gl as gl_repo
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as payments_repo
from shared.contracts.loans import BranchCashReconciled, CashCollectionRecorded
from shared.contracts.payments import RepaymentReceived
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.cash")

CASH = "cash"


def _account(given: str, kind: acc.Kind, fallback: str) -> str:
    """The account the event names if it is one of ``kind``, else the one derived from
    its office (an event is never refused for the name it gives)."""
    try:
        if acc.spec_for(given).kind is kind:
            return given
    except ValueError:
        pass
    log.warning("account %r is not a %s account; booking to %s", given, kind.value, fallback)
    return fallback


async def on_cash_collection_recorded(uow: UnitOfWork, msg: CashCollectionRecorded,
                                      env: Envelope) -> None:
    conn = uow.conn
    cash = _account(msg.cash_account, acc.Kind.BRANCH_OFFICE_CASH,
                    acc.branch_cash(msg.branch_office_id))
    pid = payment_uuid(msg.collection_id)
    fresh = await payments_repo.insert_payment(
        conn, payment_id=pid, loan_id=msg.loan_id, amount=msg.amount, currency=msg.currency,
        payer_msisdn=None, provider=CASH, source=CASH, partner_id=None,
        external_ref=msg.collection_id, provider_reference=None,
        confirmed_at=msg.collected_at)
    if not fresh:
        known = await payments_repo.payment(conn, pid)
        if known is None or known["amount"] != msg.amount or known["loan_id"] != msg.loan_id:
            log.error("cash collection %s told again with %s for loan %s; recorded as %s; "
                      "the first stands", msg.collection_id, msg.amount, msg.loan_id,
                      None if known is None else f"{known['amount']} for {known['loan_id']}")
        else:
            log.info("cash collection %s is already booked", msg.collection_id)
        return
    # the loan's office as loans knows it: the repayment that clears this suspense is
    # booked there too
    await gl_repo.remember_loans(conn, [msg.loan_id], [None], [msg.office_id])
    await ledger_repo.post(conn, postings.cash_collection(
        msg.collection_id, msg.loan_id, cash, msg.amount, office_id=msg.office_id,
        day=msg.collected_on))
    uow.emit(RepaymentReceived(
        loan_id=msg.loan_id, payment_id=msg.collection_id, amount=msg.amount,
        currency=msg.currency, payer_msisdn=None, provider=CASH, external_ref=msg.sheet_id,
        received_at=msg.collected_at), key=msg.loan_id)


async def on_branch_cash_reconciled(uow: UnitOfWork, msg: BranchCashReconciled,
                                    env: Envelope) -> None:
    difference: Decimal = msg.declared - msg.expected
    if difference != msg.difference:
        log.warning("reconciliation %s says a difference of %s; declared %s - expected %s "
                    "is %s, which is booked", msg.reconciliation_id, msg.difference,
                    msg.declared, msg.expected, difference)
    if difference == 0:
        log.info("branch %s's cash on %s matches its sheets: nothing to book",
                 msg.office_id, msg.business_date)
        return
    cash = _account(msg.cash_account, acc.Kind.BRANCH_OFFICE_CASH,
                    acc.branch_cash(msg.office_id))
    suspense = _account(msg.suspense_account, acc.Kind.BRANCH_CASH_SUSPENSE,
                        acc.branch_cash_suspense(msg.office_id))
    # idempotent on the transfer id: the same reconciliation again returns its entry
    await ledger_repo.post(uow.conn, postings.cash_difference(
        msg.reconciliation_id, cash, suspense, difference, office_id=msg.office_id,
        day=msg.business_date))
