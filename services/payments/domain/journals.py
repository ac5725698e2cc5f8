"""Manual journal entries and accounting periods (pure rules).

A manual journal is proposed by one operator (balanced, with a reason and the
references of its supporting documents) and posted only when a *different* operator
approves it. A period is a calendar month (``YYYY-MM``); once closed, nothing dated in
it is posted — a correction goes into the open period.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.payments.domain import accounts as acc
from services.payments.domain.accounts import Side
from services.payments.domain.chart import GLAccount
from services.payments.domain.ledger import Entry, Line
from shared.errors import Forbidden, InvalidInput

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    match = _PERIOD.match(period)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise InvalidInput(f"a period is a month written YYYY-MM, not {period[:20]!r}",
                           field="period")
    year, month = int(match.group(1)), int(match.group(2))
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def period_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True)
class JournalLine:
    gl_code: str
    side: Side
    amount: Decimal


def journal_entry(journal_id: str, day: dt.date, lines: Sequence[JournalLine],
                  chart: Mapping[str, GLAccount], reason: str,
                  office_id: str | None) -> Entry:
    """The ledger entry of a manual journal: each line on its GL account's ledger
    account (``gl:<code>``); detail accounts only; balanced (else 422 naming ``lines``)."""
    for i, ln in enumerate(lines):
        account = chart.get(ln.gl_code)
        if account is None:
            raise InvalidInput(f"no GL account {ln.gl_code!r}", field=f"lines[{i}].gl_code")
        if account.usage != "detail":
            raise InvalidInput(f"GL account {ln.gl_code} is a header account: post to its "
                               "detail accounts", field=f"lines[{i}].gl_code")
    return Entry(f"manual:{journal_id}", "manual_journal",
                 tuple(Line(acc.gl(ln.gl_code), ln.side, ln.amount) for ln in lines),
                 memo=reason[:500], business_date=day, office_id=office_id)


def check_approver(proposed_by: str, approver: str) -> None:
    if proposed_by == approver:
        raise Forbidden("the operator who proposed a journal cannot approve it: another "
                        "operator must", field="approved_by")
