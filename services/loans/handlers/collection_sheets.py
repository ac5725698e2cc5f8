"""Collection sheets: for an officer's day (or one group's meeting), each group and member
with what is due that day, the arrears, the expected total, phone and last payment; the
officer's cash recorded against the sheet (each line a ``CashCollectionRecorded`` that
payments turns into a repayment through the normal saga); a branch's day-end cash count
(``BranchCashReconciled``: expected vs declared, the difference to suspense)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from services.loans.repository import Conn, org
from services.loans.repository import collection_sheets as repo
from services.loans.repository import group_loans as group_loans_repo
from shared.auth import Principal
from shared.clock import BUSINESS_TZ, business_date
from shared.contracts.loans import BranchCashReconciled, CashCollectionRecorded
from shared.errors import Conflict, InvalidInput, NotFound
from shared.identifiers import InvalidIdentifier, canonical_reference
from shared.uow import UnitOfWork

ZERO = Decimal("0.00")
KINDS = {"o": "officer", "g": "group"}
_NS = uuid.UUID("6f1d0c52-3c1a-4b8e-9a57-2f0b8f1c7d10")


def sheet_id_for(day: date, kind: str, key: str) -> str:
    """``cs-20260205-o-lo-youssef`` (an officer's day) or ``cs-20260205-g-<group id>``."""
    return f"cs-{day:%Y%m%d}-{kind}-{key}"


def parse_sheet_id(sheet_id: str) -> tuple[date, str, str]:
    parts = sheet_id.split("-", 3)
    try:
        if len(parts) != 4 or parts[0] != "cs" or parts[2] not in KINDS or not parts[3]:
            raise ValueError(sheet_id)
        digits = parts[1]
        if len(digits) != 8 or not digits.isdigit():
            raise ValueError(sheet_id)
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise NotFound(f"collection sheet {sheet_id} not found", field="sheet_id") from None
    return day, parts[2], parts[3]


async def _subject_office(conn: Conn, who: Principal, kind: str, key: str, field: str
                          ) -> tuple[str | None, dict[str, Any]]:
    """The office path of the sheet's officer or group, if the token may see it."""
    if kind == "o":
        staff = await org.staff(conn, key)
        if staff is None:
            if who.office_path is None:   # head office: an officer loans has not heard of
                return None, {"officer_id": key, "officer_name": None}
            raise NotFound(f"officer {key} not found", field=field)
        if not who.can_see_office(staff.office_path):
            raise NotFound(f"officer {key} not found", field=field)
        return staff.office_path, {"officer_id": key, "officer_name": staff.full_name}
    group = await org.group(conn, key)
    if group is None or not who.can_see_office(group.office_path):
        raise NotFound(f"group {key} not found", field=field)
    return group.office_path, {"group_id": key, "group_name": group.name,
                               "officer_id": group.officer_id}


def _line(r: Any) -> dict[str, Any]:
    expected = r["due_today"] + r["arrears"]
    return {
        "loan_id": r["loan_id"], "reference": r["reference"], "client_id": r["client_id"],
        "full_name": r["full_name"], "phone": r["phone"],
        "leader": r["group_id"] is not None and r["leader_id"] == r["client_id"],
        "office_id": r["office_id"], "officer_id": r["officer_id"],
        "due_today": str(r["due_today"]), "arrears": str(r["arrears"]),
        "expected": str(expected), "days_in_arrears": r["days_in_arrears"],
        "last_payment": None if r["last_paid_at"] is None else {
            "at": r["last_paid_at"].isoformat(), "amount": str(r["last_paid_amount"])},
        "collected": None if r["collected"] is None else str(r["collected"]),
    }


async def build(conn: Conn, who: Principal, *, kind: str, key: str, day: date,
                field: str) -> dict[str, Any]:
    _, subject = await _subject_office(conn, who, kind, key, field)
    sheet_id = sheet_id_for(day, kind, key)
    rows = await repo.sheet_rows(conn, kind=kind, key=key, day=day,
                                 office_path=who.office_path, sheet_id=sheet_id)
    groups: dict[str | None, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r["group_id"], {
            "group_id": r["group_id"], "name": r["group_name"], "members": [],
            "expected": ZERO, "due_today": ZERO, "arrears": ZERO})
        g["members"].append(_line(r))
        g["due_today"] += r["due_today"]
        g["arrears"] += r["arrears"]
        g["expected"] += r["due_today"] + r["arrears"]
    # a group's one collection (a line naming its group loan) is the group's, not a member's
    live = await repo.group_loans_on(conn, [k for k in groups if k], sheet_id)
    out_groups = [{**g, "expected": str(g["expected"]), "due_today": str(g["due_today"]),
                   "arrears": str(g["arrears"]),
                   "group_loan_id": live[k][0] if k in live else None,
                   "collected": None if k not in live or live[k][1] is None
                   else str(live[k][1])} for k, g in groups.items()]
    group_collected = sum((a for _, a in live.values() if a is not None), ZERO)
    return {
        "sheet_id": sheet_id, "date": day.isoformat(), "kind": KINDS[kind], **subject,
        "currency": "MAD", "groups": out_groups,
        "totals": {"members": len(rows),
                   "due_today": str(sum((r["due_today"] for r in rows), ZERO)),
                   "arrears": str(sum((r["arrears"] for r in rows), ZERO)),
                   "expected": str(sum((r["due_today"] + r["arrears"] for r in rows), ZERO)),
                   "collected": str(sum((r["collected"] or ZERO for r in rows),
                                        group_collected))},
        "links": {"self": f"/v1/collection-sheets/{sheet_id}",
                  "collections": f"/v1/collection-sheets/{sheet_id}/collections"},
    }


@dataclass(frozen=True)
class LineIn:
    loan_id: str
    amount: Decimal


def collection_id_for(sheet_id: str, loan_id: str) -> str:
    """One repayment per loan and sheet, whatever the request that records it."""
    return f"csh_{uuid.uuid5(_NS, f'{sheet_id}|{loan_id}').hex}"


def _collected_at(day: date, given: datetime | None, now: datetime) -> datetime:
    if given is not None:
        if business_date(given) != day:
            raise InvalidInput(f"collected_at must fall on the sheet's date {day}",
                               field="collected_at")
        return given
    if business_date(now) == day:
        return now
    return datetime.combine(day, time(12, 0), BUSINESS_TZ).astimezone(UTC)


async def record(uow: UnitOfWork, who: Principal, sheet_id: str, lines: Sequence[LineIn],
                 collected_at: datetime | None) -> dict[str, Any]:
    conn = uow.conn
    day, kind, key = parse_sheet_id(sheet_id)
    await _subject_office(conn, who, kind, key, "sheet_id")
    at = _collected_at(day, collected_at, datetime.now(UTC))
    canonical: list[str] = []
    for n, line in enumerate(lines):
        try:
            ref = canonical_reference(line.loan_id, field=f"lines[{n}].loan_id")
        except InvalidIdentifier:
            raise InvalidInput(f"loan {line.loan_id!r} is not on this sheet",
                               field=f"lines[{n}].loan_id") from None
        if ref in canonical:
            raise InvalidInput(f"loan {line.loan_id} appears twice",
                               field=f"lines[{n}].loan_id")
        canonical.append(ref)
    # serialise the recordings of one sheet: a concurrent one waits, then sees these lines
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", sheet_id)
    already = await repo.recorded(conn, sheet_id)
    on_sheet = {r["loan_id"]: r for r in await repo.sheet_rows(
        conn, kind=kind, key=key, day=day, office_path=who.office_path, sheet_id=sheet_id)}
    results: list[dict[str, Any]] = []
    todo: list[tuple[LineIn, str, Any]] = []
    # a line may name a group loan whose members are on the sheet: the group's one
    # collection, split by loans over the members by what each owed that day
    groups = await _group_lines(conn, canonical, on_sheet, already)
    for n, (line, loan_id) in enumerate(zip(lines, canonical, strict=True)):
        if loan_id in already:
            if already[loan_id] != line.amount:
                raise Conflict(
                    f"loan {loan_id} already has {already[loan_id]} recorded on this sheet",
                    field=f"lines[{n}].amount", recorded=str(already[loan_id]))
            results.append({"loan_id": loan_id, "amount": str(line.amount),
                            "collection_id": collection_id_for(sheet_id, loan_id),
                            "status": "already_recorded"})
            continue
        row = on_sheet.get(loan_id) or groups.get(loan_id)
        if row is None:
            raise InvalidInput(f"loan {line.loan_id} is not on this sheet",
                               field=f"lines[{n}].loan_id")
        group_id = row["group_id"]
        members = {k for k, r in on_sheet.items() if group_id and r["group_id"] == group_id}
        if loan_id in groups and (members & (set(canonical) | set(already))):
            raise Conflict(f"group loan {loan_id} and a member's own line on this sheet would "
                           "count the group's cash twice: record one or the other",
                           field=f"lines[{n}].loan_id")
        if group_id and loan_id not in groups and any(
                g in canonical or g in already for g, r in groups.items()
                if r["group_id"] == group_id):
            raise Conflict(f"loan {loan_id}'s group has its collection on this sheet: the "
                           "member's share comes from it", field=f"lines[{n}].loan_id")
        todo.append((line, loan_id, row))
    for line, loan_id, row in todo:
        c = repo.Collection(
            collection_id=collection_id_for(sheet_id, loan_id), sheet_id=sheet_id,
            loan_id=loan_id, client_id=row["client_id"], group_id=row["group_id"],
            amount=line.amount, currency=row["currency"], office_id=row["office_id"],
            office_path=row["office_path"],
            branch_office_id=org.branch_of(row["office_id"], row["office_path"]),
            officer_id=row["officer_id"], collected_on=day, collected_at=at,
            recorded_by=who.sub)
        fresh = await repo.record(conn, c)
        if fresh:
            uow.emit(CashCollectionRecorded(
                loan_id=loan_id, client_id=c.client_id, collection_id=c.collection_id,
                sheet_id=sheet_id, amount=c.amount, currency=c.currency,
                office_id=c.office_id, office_path=c.office_path,
                branch_office_id=c.branch_office_id,
                cash_account=f"cash:branch:{c.branch_office_id}", officer_id=c.officer_id,
                group_id=c.group_id, collected_on=day, collected_at=at,
                recorded_by=who.sub), key=loan_id)
        results.append({"loan_id": loan_id, "amount": str(line.amount),
                        "collection_id": c.collection_id,
                        "status": "recorded" if fresh else "already_recorded"})
    recorded_now = [r for r in results if r["status"] == "recorded"]
    return {"sheet_id": sheet_id, "date": day.isoformat(), "collected_at": at.isoformat(),
            "lines": results, "recorded": len(recorded_now),
            "already_recorded": len(results) - len(recorded_now),
            "amount_recorded": str(sum((Decimal(r["amount"]) for r in recorded_now), ZERO))}


async def _group_lines(conn: Conn, canonical: list[str], on_sheet: dict[str, Any],
                       already: dict[str, Decimal]) -> dict[str, dict[str, Any]]:
    """The group loans among ``canonical`` (or already recorded) whose members are on the
    sheet, each as a sheet line for the group: the group's office and officer, its leader
    as the payer."""
    on_sheet_groups = {r["group_id"]: r for r in on_sheet.values() if r["group_id"]}
    out: dict[str, dict[str, Any]] = {}
    for ref in {*canonical, *already} - set(on_sheet):
        gl = await group_loans_repo.get(conn, ref)
        if gl is None or gl["status"] != "active" or gl["group_id"] not in on_sheet_groups:
            continue
        member = on_sheet_groups[gl["group_id"]]
        leader = next((r for r in on_sheet.values() if r["group_id"] == gl["group_id"]
                       and r["leader_id"] == r["client_id"]), member)
        out[ref] = {"client_id": leader["client_id"], "group_id": gl["group_id"],
                    "currency": member["currency"], "office_id": gl["office_id"],
                    "office_path": gl["office_path"], "officer_id": member["officer_id"]}
    return out


# -- a branch's day-end cash ---------------------------------------------------------------
async def _branch(conn: Conn, who: Principal, office_id: str) -> org.Office:
    office = await org.office(conn, office_id)
    if office is None or not who.can_see_office(office.path):
        raise NotFound(f"office {office_id} not found", field="office_id")
    if office.kind != "branch":
        raise InvalidInput(f"office {office_id} is a {office.kind}: cash is counted per branch",
                           field="office_id")
    return office


def _reconciliation_json(office: org.Office, day: date, expected: dict[str, Any],
                         done: Any) -> dict[str, Any]:
    return {
        "office_id": office.office_id, "business_date": day.isoformat(), "currency": "MAD",
        "cash_account": f"cash:branch:{office.office_id}",
        "suspense_account": f"suspense:cash:branch:{office.office_id}",
        "expected": str(done["expected"] if done else expected["expected"]),
        "collections": done["collections"] if done else expected["collections"],
        "by_officer": expected["by_officer"],
        "declared": None if done is None else str(done["declared"]),
        "difference": None if done is None else str(done["difference"]),
        "reconciliation_id": None if done is None else done["reconciliation_id"],
        "declared_by": None if done is None else done["declared_by"],
        "note": None if done is None else done["note"],
        "status": "reconciled" if done else "open",
    }


async def show_cash(conn: Conn, who: Principal, office_id: str, day: date) -> dict[str, Any]:
    office = await _branch(conn, who, office_id)
    expected = await repo.expected_cash(conn, office.office_id, day)
    done = await repo.reconciliation(conn, office.office_id, day)
    return _reconciliation_json(office, day, expected, done)


async def reconcile(uow: UnitOfWork, who: Principal, office_id: str, day: date,
                    declared: Decimal, note: str) -> dict[str, Any]:
    conn = uow.conn
    office = await _branch(conn, who, office_id)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"cash:{office.office_id}:{day}")
    if await repo.reconciliation(conn, office.office_id, day) is not None:
        raise Conflict(f"the cash of {office_id} on {day} is already reconciled",
                       field="business_date")
    expected = await repo.expected_cash(conn, office.office_id, day)
    rec_id = f"cr_{uuid.uuid5(_NS, f'{office.office_id}|{day}').hex}"
    await repo.insert_reconciliation(
        conn, reconciliation_id=rec_id, office_id=office.office_id, office_path=office.path,
        day=day, expected=expected["expected"], declared=declared,
        collections=expected["collections"], declared_by=who.sub, note=note)
    uow.emit(BranchCashReconciled(
        reconciliation_id=rec_id, office_id=office.office_id, office_path=office.path,
        business_date=day, expected=expected["expected"], declared=declared,
        difference=declared - expected["expected"],
        cash_account=f"cash:branch:{office.office_id}",
        suspense_account=f"suspense:cash:branch:{office.office_id}",
        collections=expected["collections"], declared_by=who.sub), key=office.office_id)
    done = await repo.reconciliation(conn, office.office_id, day)
    return _reconciliation_json(office, day, expected, done)
