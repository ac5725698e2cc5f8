"""What the routes share: the runtime, the savings settings, the clock, money-write keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import Request
from fastapi.responses import JSONResponse

from services.savings.settings import SavingsSettings
from shared import idempotency
from shared.app import Runtime
from shared.auth import Principal
from shared.clock import Clock, business_date, system_clock
from shared.errors import Forbidden
from shared.uow import UnitOfWork


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def settings(request: Request) -> SavingsSettings:
    return cast(SavingsSettings, runtime(request).settings)


def clock(request: Request) -> Clock:
    return cast(Clock, runtime(request).state.get("clock", system_clock))


def now(request: Request) -> dt.datetime:
    return clock(request)()


def today(request: Request) -> dt.date:
    return business_date(now(request))


def operator_only(who: Principal) -> None:
    if not who.sees_all_tenants:
        raise Forbidden("this is for operators (tenant:all)")


class KeyedWrite:
    """A money write under an ``Idempotency-Key``: ``replay`` is the first answer when
    the same key and body came before; ``done`` stores this one's."""

    def __init__(self, uow: UnitOfWork, scope: str, key: str) -> None:
        self.uow = uow
        self.scope = scope
        self.key = key
        self.replay: JSONResponse | None = None

    async def done(self, status: int, body: Any) -> JSONResponse:
        await idempotency.complete(self.uow, self.scope, self.key, status, body)
        await self.uow.commit()
        return JSONResponse(body, status_code=status)


@asynccontextmanager
async def keyed_write(request: Request, who: Principal, what: str, key: str | None,
                      body: Any) -> AsyncIterator[KeyedWrite]:
    checked = idempotency.check_key(key)
    scope = f"savings.{what}:{who.partner_id or who.sub}"
    async with runtime(request).uow() as uow:
        write = KeyedWrite(uow, scope, checked)
        replay = await idempotency.begin(uow, scope, checked, body)
        if replay is not None:
            write.replay = JSONResponse(replay.body, status_code=replay.status)
        yield write
