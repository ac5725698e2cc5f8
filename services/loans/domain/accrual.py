"""A loan's interest for one business day, as close of business publishes it in
``InterestAccrued`` (``repository/cob_servicing.py`` computes the same in SQL).

interest(day) = balance * annual rate * year fraction of (day - 1, day] under the
product's day count (``schedule.year_fraction``: actual/365, actual/360, 30/360),
rounded half up to the cent. The balance is the outstanding principal on a declining
balance product, the loan's principal on a flat one (whose interest is computed on it).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from services.loans.domain.products import DayCount, InterestMethod
from services.loans.domain.schedule import accrued_interest


def daily_interest(*, method: InterestMethod, principal: Decimal, outstanding: Decimal,
                   annual_rate: Decimal, day_count: DayCount, day: date) -> Decimal:
    balance = principal if method is InterestMethod.FLAT else outstanding
    return accrued_interest(balance, annual_rate, day_count, day - timedelta(days=1), day)
