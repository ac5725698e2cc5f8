"""Products, applications and the operator decisions on a loan."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from services.loans.domain import saga as sg
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.domain.pricing import price
from services.loans.domain.products import ProductTerms
from services.loans.domain.purpose import check_purpose
from services.loans.domain.reference import new_reference
from services.loans.domain.schedule import build_schedule
from services.loans.handlers.saga import execute, now_utc, record
from services.loans.handlers.views import loan_json, outstanding
from services.loans.repository import calendar as calendar_repo
from services.loans.repository import clients as clients_repo
from services.loans.repository import compulsory_savings as compulsory_repo
from services.loans.repository import loans as loans_repo
from services.loans.repository import org as org_repo
from services.loans.repository import products as products_repo
from services.loans.repository import schedules as schedules_repo
from services.loans.repository.products import ProductVersion
from shared.auth import Principal
from shared.contracts.loans import (
    LoanApproved,
    LoanRejected,
    LoanSubmitted,
    LoanWithdrawn,
    LoanWrittenOff,
)
from shared.errors import InvalidInput, NotFound
from shared.identifiers import InvalidIdentifier, canonical_reference
from shared.uow import UnitOfWork

log = logging.getLogger("noria.loans")


# -- products ---------------------------------------------------------------------
async def create_product(uow: UnitOfWork, by: str, name: str, terms: ProductTerms
                         ) -> ProductVersion:
    terms.validate()
    product_id = f"prd_{uuid.uuid4().hex[:12]}"
    return await products_repo.insert_version(uow.conn, product_id, name, "MAD", terms, by)


async def update_product(uow: UnitOfWork, by: str, product_id: str, name: str,
                         terms: ProductTerms) -> ProductVersion:
    """A change is a new version; loans keep the version they were applied for."""
    terms.validate()
    if not await products_repo.lock_product(uow.conn, product_id):
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    return await products_repo.insert_version(uow.conn, product_id, name, "MAD", terms, by)


# -- applications -----------------------------------------------------------------
async def submit(uow: UnitOfWork, who: Principal, *, client_id: str, product_id: str,
                 principal: Decimal, term: int, today: date, purpose: str | None = None,
                 purpose_ceilings: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
    conn = uow.conn
    product = await products_repo.get(conn, product_id)
    if product is None:
        raise InvalidInput(f"no product {product_id!r}", field="product_id")
    client = await clients_repo.get(conn, client_id)
    # Another partner's client is "unknown" too: never reveal who else has a client.
    if client is None or client.partner_id is None or not who.can_see(client.partner_id):
        raise InvalidInput(
            f"no client {client_id!r} is known to loans for this partner (a client registered"
            " a moment ago may take a few seconds to reach loans; retry)", field="client_id")
    office_id, office_path, _ = await org_repo.client_office(conn, client_id)
    if not who.can_see_office(office_path):
        raise InvalidInput(f"no client {client_id!r} is known to loans in this office",
                           field="client_id")
    product.terms.check_application(principal, term)
    check_purpose(purpose, principal, purpose_ceilings or {})
    calendar = await calendar_repo.working_calendar(conn, today)
    schedule = build_schedule(product.terms, principal, term, today, calendar)
    loan = Loan(
        id=str(uuid.uuid4()), client_id=client_id, partner_id=client.partner_id,
        product_id=product.id, product_version=product.version, principal=principal,
        term=term, status=LoanStatus.SUBMITTED, submitted_by=who.sub, currency=product.currency,
        reference=new_reference(), purpose=purpose,
    )
    await loans_repo.insert(conn, loan, product.terms.penalty)
    await org_repo.stamp_loan(conn, loan.id, client_id)
    await loans_repo.insert_schedule(conn, loan.id, schedule)
    cost = price(principal, [p.total for p in schedule], product.terms.periods_per_year)
    await schedules_repo.set_price(conn, loan.id, cost.teg, cost.total_cost_of_credit)
    uow.emit(LoanSubmitted(
        loan_id=loan.id, client_id=client_id, partner_id=loan.partner_id,
        product_id=product.id, principal=principal, term=term, currency=loan.currency,
        submitted_by=who.sub, reference=loan.reference, purpose=loan.purpose,
        office_id=office_id), key=loan.id)
    body = loan_json(loan, await loans_repo.installments(conn, loan.id), with_schedule=True,
                     servicing=(await schedules_repo.servicing(conn, [loan.id]))[loan.id])
    body["schedule_note"] = ("preview from today's date; at disbursement the same installments"
                             " are re-anchored to the disbursement date")
    return body


async def load_visible(uow: UnitOfWork, who: Principal, loan_id: str, *,
                       for_update: bool = False) -> Loan:
    """The loan a caller names (in any spelling of its reference) if it may see it; a
    reference with no canonical form names no loan."""
    try:
        ref = canonical_reference(loan_id, field="loan_id")
    except InvalidIdentifier:
        raise NotFound(f"loan {loan_id!r} not found", field="loan_id") from None
    loan = await loans_repo.get(uow.conn, ref, for_update=for_update)
    if loan is None or not who.can_see(loan.partner_id):
        raise NotFound(f"loan {loan_id} not found", field="loan_id")
    if who.office_path is not None:   # an office's token sees its subtree's loans only
        office = await org_repo.loan_office(uow.conn, loan.id)
        if office is None or not who.can_see_office(office[1]):
            raise NotFound(f"loan {loan_id} not found", field="loan_id")
    return loan


async def approve(uow: UnitOfWork, who: Principal, loan_id: str, policy: sg.SagaPolicy
                  ) -> dict[str, Any]:
    """Maker-checker approval; starts the disbursement saga in the same transaction."""
    loan = await load_visible(uow, who, loan_id, for_update=True)
    loan.approve(who.sub)
    savings = await compulsory_repo.get(uow.conn, loan.product_id)
    state, commands = sg.start(
        saga_id=str(uuid.uuid4()), loan_id=loan.id, client_id=loan.client_id,
        partner_id=loan.partner_id, amount=loan.principal, currency=loan.currency,
        now=now_utc(), policy=policy,
        savings_required=None if savings is None else savings.required(loan.principal))
    uow.emit(LoanApproved(loan_id=loan.id, client_id=loan.client_id, approved_by=who.sub,
                          saga_id=state.id), key=loan.id)
    changes = await execute(uow, loan, state, commands)
    # the loan, the new saga and its first timeline row in one statement
    await record(uow, None, state, "LoanApproved", [f"approved by {who.sub}"], loan=loan,
                 due_dates=changes.due_dates)
    return {**await _shown(uow, loan), "saga_id": state.id}


async def reject(uow: UnitOfWork, who: Principal, loan_id: str, reason: str
                 ) -> dict[str, Any]:
    loan = await load_visible(uow, who, loan_id, for_update=True)
    loan.reject(who.sub, reason)
    await loans_repo.save(uow.conn, loan)
    uow.emit(LoanRejected(loan_id=loan.id, client_id=loan.client_id, reason=reason,
                          rejected_by=who.sub), key=loan.id)
    return await show(uow, who, loan.id)


async def withdraw(uow: UnitOfWork, who: Principal, loan_id: str, reason: str
                   ) -> dict[str, Any]:
    loan = await load_visible(uow, who, loan_id, for_update=True)
    loan.withdraw(who.sub, reason)
    await loans_repo.save(uow.conn, loan)
    uow.emit(LoanWithdrawn(loan_id=loan.id, client_id=loan.client_id, reason=reason),
             key=loan.id)
    return await show(uow, who, loan.id)


async def write_off(uow: UnitOfWork, who: Principal, loan_id: str, reason: str, *,
                    min_days_in_arrears: int, today: date) -> dict[str, Any]:
    conn = uow.conn
    loan = await load_visible(uow, who, loan_id, for_update=True)
    owed = outstanding(await loans_repo.installments(conn, loan.id))
    days = loan.days_in_arrears
    loan.write_off(who.sub, today, min_days_in_arrears, reason)
    await loans_repo.save(conn, loan)
    await loans_repo.write_off_installments(conn, loan.id)
    uow.emit(LoanWrittenOff(
        loan_id=loan.id, client_id=loan.client_id, principal_written_off=owed["principal"],
        interest_written_off=owed["interest"], fees_written_off=owed["fees"],
        penalties_written_off=owed["penalties"], written_off_by=who.sub,
        days_in_arrears=days), key=loan.id)
    return await show(uow, who, loan.id)


async def show(uow: UnitOfWork, who: Principal, loan_id: str, *, with_schedule: bool = False
               ) -> dict[str, Any]:
    loan = await load_visible(uow, who, loan_id)
    return await _shown(uow, loan, with_schedule=with_schedule)


async def _shown(uow: UnitOfWork, loan: Loan, *, with_schedule: bool = False
                 ) -> dict[str, Any]:
    """A loan already read (and found visible) in this transaction, as shown."""
    items = await loans_repo.installments(uow.conn, loan.id)
    extra = (await schedules_repo.servicing(uow.conn, [loan.id]))[loan.id]
    return loan_json(loan, items, with_schedule=with_schedule, servicing=extra)
