"""The books of a scripted month, under the cash and the accrual basis, against figures
worked by hand; assets = liabilities + equity at every business date; the trial balance
at zero and the portfolio sub-ledger equal to each loan's principal throughout.

The month (March 2025), four loans of product p-micro:

| loan | office   | principal | rate, day count         | daily interest                 |
|------|----------|-----------|-------------------------|--------------------------------|
| A    | b-agadir | 3650.00   | 10 %, actual/365        | 1.00 (0.90 once 3285 is owed)  |
| B    | b-agadir | 7300.00   | 10 %, actual/365        | 2.00 (1.80 once 6570 is owed)  |
| C    | b-tiznit | 3600.00   | 10 %, actual/360        | 1.00                           |
| D    | b-tiznit | 1800.00   | 20 %, 30/360            | 1.00 per 30/360 day            |

- 1 Mar: 100 000.00 of funding placed with the provider; the four loans paid out.
- close of business every day from 2 Mar to 31 Mar (accruals with each loan's
  outstanding principal and days in arrears); provisions on 10, 20, 25 and 31 Mar.
- 15 Mar: A pays its installment on time: 365.00 principal + 14.00 interest.
  B's installment (730.00 + 28.00) is due and not paid: 1 day late on 16 Mar.
- 20 Mar: C settles early: 3600.00 principal + 19.00 interest; no accrual after.
- D's installment was due 5 Mar and is never paid: D is d - 5 days late from 6 Mar.
- 25 Mar: B pays late: 730.00 principal + 28.00 interest + 5.00 penalty.
  D reaches 20 days (the non-accrual threshold set for this test): accrues no more,
  its accrued interest is reversed.
- 28 Mar: D (1800.00) is written off. 30 Mar: 300.00 recovered on D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.infra import Infra
from tests.integration.payments.accounting_rig import READ, Books, books

D = Decimal
MARCH = [dt.date(2025, 3, d) for d in range(1, 32)]


def day(n: int) -> dt.date:
    return dt.date(2025, 3, n)


@pytest.fixture(scope="module", params=["cash", "accrual"])
async def month(request: pytest.FixtureRequest, infra: Infra,
                isolated_schema: Callable[..., Any]) -> AsyncIterator[tuple[str, Books]]:
    async with books(infra, isolated_schema) as b:
        await b.call("PUT", "/v1/accounting/settings",
                     json={"accounting_basis": request.param, "non_accrual_days": 20})
        yield request.param, b


def gl(statement: dict[str, Any], section: str, code: str) -> D:
    return sum((D(r["balance"]) for r in statement[section] if r["code"] == code), D("0"))


async def run_month(basis: str, b: Books) -> None:
    for loan, office in (("A", "b-agadir"), ("B", "b-agadir"), ("C", "b-tiznit"),
                         ("D", "b-tiznit")):
        await b.loan(loan, office)
    await b.fund("100000.00", day(1))
    for loan, amount in (("A", "3650.00"), ("B", "7300.00"), ("C", "3600.00"),
                         ("D", "1800.00")):
        await b.disburse(loan, amount, day(1))
    principal = {"A": D("3650.00"), "B": D("7300.00"), "C": D("3600.00"), "D": D("1800.00")}
    terms = {"A": ("0.10", "actual/365"), "B": ("0.10", "actual/365"),
             "C": ("0.10", "actual/360"), "D": ("0.20", "30/360")}
    for d in MARCH[1:]:
        n = d.day
        # the day's payments, before its close of business
        if n == 15:
            await b.repay("A", d, principal="365.00", interest="14.00")
            principal["A"] -= D("365.00")
        if n == 20:
            await b.repay("C", d, principal="3600.00", interest="19.00")
            principal["C"] = D("0")
        if n == 25:
            await b.repay("B", d, principal="730.00", interest="28.00", penalties="5.00")
            principal["B"] -= D("730.00")
        if n == 28:
            await b.write_off("D", "1800.00", d)
        if n == 30:
            await b.repay("D", d, principal="300.00")
        arrears = {"A": 0, "B": n - 15 if 16 <= n <= 24 else 0, "C": 0,
                   "D": max(0, n - 5)}
        active = [k for k in ("A", "B", "C", "D")
                  if not (k == "C" and n >= 20) and not (k == "D" and n >= 28)]
        # close of business: accruals (accrual basis), then provisions on some days
        if basis == "accrual":
            await b.call("POST", f"/v1/accruals/{d}", json={"loans": [
                {"loan_id": k, "principal": str(principal[k]), "annual_rate": terms[k][0],
                 "day_count": terms[k][1], "days_in_arrears": arrears[k]} for k in active]})
        if n in (10, 20, 25, 31):
            await b.call("POST", f"/v1/provisions/{d}", json={"loans": [
                {"loan_id": k, "days_in_arrears": arrears[k]} for k in active]})
        # at every business date: the books balance, assets = liabilities + equity, and
        # each loan's sub-ledger holds its principal
        sheet = await b.statement("balance-sheet", as_of=d)
        assert sheet["balanced"], sheet
        assert D(sheet["total_assets"]) == D(sheet["total_liabilities"]) + D(
            sheet["total_equity"])
        trial = await b.statement("trial-balance", as_of=d)
        assert trial["balanced"] and trial["total_debits"] == trial["total_credits"]
        for k in ("A", "B", "C"):
            resp = await b.call("GET", f"/v1/loans/{k}/portfolio-balance", READ)
            assert D(resp["portfolio_balance"]) == principal[k]
        written_off = D("0") if n >= 28 else D("1800.00")
        assert gl(sheet, "assets", "2100") == sum(
            (principal[k] for k in "ABC"), D("0")) + written_off


async def test_the_books_of_a_month_match_the_hand_worked_figures(
        month: tuple[str, Books]) -> None:
    basis, b = month
    await run_month(basis, b)
    income = await b.statement("income", **{"from": day(1), "to": day(31)})
    sheet = await b.statement("balance-sheet", as_of=day(31))
    if basis == "accrual":
        # Interest income (7110), accrued day by day:
        #   A: 2-14 Mar 13 x 1.00 + 15-31 Mar 17 x 0.90 (3285 x 10 % / 365)  = 28.30
        #   B: 2-24 Mar 23 x 2.00 + 25-31 Mar 7 x 1.80 (6570 x 10 % / 365)   = 58.60
        #   C: 2-19 Mar 18 x 1.00 (3600 x 10 % / 360)                        = 18.00
        #   D: 2-24 Mar 23 x 1.00 (1800 x 20 % / 360, one 30/360 day each)    = 23.00
        #   D reversed on 25 Mar (20 days late: non-accrual)                  = -23.00
        #   paid beyond what was accrued: A 14 - 13 = 1.00, C 19 - 18 = 1.00  =  2.00
        #   total 28.30 + 58.60 + 18.00 + 23.00 - 23.00 + 2.00               = 106.90
        interest = D("106.90")
        # Interest receivable (2170): A 28.30 - 13.00 = 15.30, B 58.60 - 28.00 = 30.60
        receivable = D("45.90")
    else:
        # cash basis: the interest paid, A 14.00 + B 28.00 + C 19.00
        interest = D("61.00")
        receivable = D("0.00")
    assert gl(income, "income", "7110") == interest
    assert gl(income, "income", "7130") == D("5.00")       # B's penalty
    assert gl(income, "income", "7700") == D("300.00")     # recovered on D
    # Provisions (6700): 10 Mar D 5 days late, 1800 x 5 % = 90.00 charged; 20 Mar B 5 days
    # late, 7300 x 5 % = 365.00 charged; 25 Mar B cured, 365.00 written back; 28 Mar the
    # write-off consumes D's 90.00.  Net 90.00.
    assert gl(income, "expenses", "6700") == D("90.00")
    # Write-off (6750): 1800.00 less the allowance consumed, 90.00
    assert gl(income, "expenses", "6750") == D("1710.00")
    total_income = interest + D("305.00")
    assert D(income["total_income"]) == total_income
    assert D(income["total_expenses"]) == D("1800.00")
    assert D(income["net_income"]) == total_income - D("1800.00")  # -1388.10 / -1434.00

    # Balance sheet, 31 March:
    #   settlement (1140): 100000 - paid out 16350 + collected (379 + 3619 + 763 + 300)
    #                      = 88711.00
    #   portfolio (2100): A 3285 + B 6570 = 9855.00; allowance (2190): 0.00
    assert gl(sheet, "assets", "1140") == D("88711.00")
    assert gl(sheet, "assets", "2100") == D("9855.00")
    assert gl(sheet, "assets", "2170") == receivable
    assert gl(sheet, "assets", "2190") == D("0.00")
    assert D(sheet["total_assets"]) == D("98566.00") + receivable
    assert D(sheet["total_liabilities"]) == D("0.00")      # suspense emptied
    assert gl(sheet, "equity", "5100") == D("100000.00")
    assert D(sheet["unclosed_result"]) == total_income - D("1800.00")
    assert sheet["balanced"]

    # per office: A and B in Agadir, C and D in Tiznit; each branch's books balance
    # and the branches add up to the whole (the funding has no office)
    agadir = await b.statement("income", office_id="b-agadir", **{"from": day(1),
                                                                   "to": day(31)})
    tiznit = await b.statement("income", office_id="b-tiznit", **{"from": day(1),
                                                                   "to": day(31)})
    if basis == "accrual":
        # Agadir: A 28.30 + 1.00, B 58.60, B's penalty 5.00; B's provision 365 - 365 = 0
        assert D(agadir["net_income"]) == D("92.90")
        # Tiznit: C 18.00 + 1.00, D 23.00 - 23.00, recovery 300; provision 90, write-off 1710
        assert D(tiznit["net_income"]) == D("-1481.00")
    else:
        assert D(agadir["net_income"]) == D("47.00")       # 14 + 28 + 5
        assert D(tiznit["net_income"]) == D("-1481.00")    # 19 + 300 - 90 - 1710
    assert D(agadir["net_income"]) + D(tiznit["net_income"]) == D(income["net_income"])
    for office in ("b-agadir", "b-tiznit"):
        assert (await b.statement("balance-sheet", as_of=day(31), office_id=office))["balanced"]

    # CSV, by the Accept header or ?format=csv
    resp = await b.api.get("/v1/statements/income", params={"from": "2025-03-01",
                                                           "to": "2025-03-31"},
                           headers={**b.auth(READ), "Accept": "text/csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = [line.split(",") for line in resp.text.splitlines()]
    assert rows[0][:3] == ["section", "code", "name_fr"]
    assert ["total", "net_income"] == rows[-1][:2]
    assert D(rows[-1][-1]) == total_income - D("1800.00")
    csv_sheet = await b.api.get("/v1/statements/balance-sheet",
                                params={"as_of": "2025-03-31", "format": "csv"},
                                headers=b.auth(READ))
    assert "income" not in csv_sheet.text.split("\n")[1] and "1140" in csv_sheet.text
