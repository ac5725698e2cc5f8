"""What the routes share: the runtime, its pool, the handlers' policies."""

from __future__ import annotations

from typing import cast

import asyncpg
from fastapi import Request

from services.notifications.handlers.policies import POLICIES, Policies
from services.notifications.repository.offices import OfficeFilter
from shared.app import Runtime
from shared.auth import Principal


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def pool(request: Request) -> asyncpg.Pool:
    return runtime(request).pool


def policies(request: Request) -> Policies:
    return cast(Policies, runtime(request).state[POLICIES])


def partner_scope(principal: Principal) -> str | None:
    """The partner whose rows a principal sees (None: every tenant's)."""
    return None if principal.sees_all_tenants else (principal.partner_id or "-")


def office_filter(principal: Principal, office_id: str | None = None) -> OfficeFilter:
    """The offices whose clients' rows a principal sees (its token's subtree), narrowed
    to ``office_id`` and its subtree when one is asked for."""
    return OfficeFilter(within=principal.office_path, office_id=office_id)
