"""What the routes share: the runtime, the loans settings, operator-only checks."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from services.loans.settings import LoansSettings
from shared.app import Runtime
from shared.auth import Principal
from shared.errors import Forbidden


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def settings(request: Request) -> LoansSettings:
    return cast(LoansSettings, runtime(request).settings)


def operator_only(who: Principal) -> None:
    if not who.sees_all_tenants:
        raise Forbidden("this view is for operators (tenant:all)")
