"""Bearer-token auth: signed JWTs carrying ``sub``, ``partner_id`` and ``scopes``.

Scopes are ``<area>:<action>``. Partner tokens carry their ``partner_id`` and see
only their own data; operator tokens carry ``tenant:all``.

An operator token may also be scoped to an office: ``office_id`` and ``office_path``,
the office's materialised path in the hierarchy (``ho/r-souss/b-agadir``). Such a token
sees what belongs to that office and its subtree (``can_see_office``); a token without
an office (head office) sees every office.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import DEFAULT_DEV_SECRET

ALGORITHM = "HS256"
ISSUER = "noria"

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "partner": (
        "clients:read", "clients:write", "loans:read", "loans:write",
        "payments:read", "messages:read",
    ),
    "operator": (
        "tenant:all", "clients:read", "clients:write", "clients:kyc", "loans:read",
        "loans:write", "loans:approve", "products:write", "cob:run", "payments:read",
        "ledger:read", "messages:read", "messages:resend", "templates:write", "dlq:read",
        "dlq:replay", "refunds:retry",
    ),
    "wallet": ("repayments:write", "payments:read"),
}


class AuthError(Exception):
    def __init__(self, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Principal:
    sub: str
    partner_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    office_id: str | None = None
    office_path: str | None = None

    @property
    def sees_all_tenants(self) -> bool:
        return "tenant:all" in self.scopes

    def can_see(self, partner_id: str | None) -> bool:
        return self.sees_all_tenants or (partner_id is not None and partner_id == self.partner_id)

    def can_see_office(self, office_path: str | None) -> bool:
        """True when the row's office is this token's office or below it in the tree."""
        if self.office_path is None:
            return True
        if office_path is None:
            return False
        return office_path == self.office_path or office_path.startswith(self.office_path + "/")


def mint_token(
    secret: str,
    *,
    sub: str,
    scopes: list[str] | tuple[str, ...],
    partner_id: str | None = None,
    office_id: str | None = None,
    office_path: str | None = None,
    ttl_s: int = 12 * 3600,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": sub,
        "scopes": list(scopes),
        "iat": issued,
        "exp": issued + ttl_s,
    }
    if partner_id is not None:
        claims["partner_id"] = partner_id
    if office_id is not None:
        claims["office_id"] = office_id
        claims["office_path"] = office_path or office_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"the token is invalid: {exc}") from None
    scopes = claims.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise AuthError("the token's scopes claim must be a list of strings")
    partner = claims.get("partner_id")
    office = claims.get("office_id")
    office_path = claims.get("office_path")
    if (office is not None and not isinstance(office, str)) or (
            office_path is not None and not isinstance(office_path, str)):
        raise AuthError("the token's office claims must be strings")
    return Principal(
        sub=str(claims["sub"]),
        partner_id=str(partner) if partner is not None else None,
        scopes=frozenset(scopes),
        office_id=office,
        office_path=office_path if office is not None else None,
    )


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("a bearer token is required")
    secret: str = request.app.state.jwt_secret
    principal = decode_token(secret, credentials.credentials)
    request.state.principal = principal
    return principal


def require(*scopes: str) -> object:
    """FastAPI dependency: the caller's token must carry every one of ``scopes``."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise AuthError(f"the token lacks the scope(s): {', '.join(missing)}", status=403)
        return principal

    return Depends(dependency)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Mint a development bearer token")
    parser.add_argument("--role", choices=sorted(ROLE_SCOPES), required=True)
    parser.add_argument("--sub", required=True)
    parser.add_argument("--partner", default=None)
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    secret = os.environ.get("NORIA_JWT_SECRET", DEFAULT_DEV_SECRET)
    if args.role in ("partner", "wallet") and not args.partner:
        parser.error(f"a {args.role} token needs --partner")
    print(f"role={args.role} sub={args.sub} partner={args.partner} "
          f"scopes={' '.join(ROLE_SCOPES[args.role])}")
    print(mint_token(secret, sub=args.sub, scopes=ROLE_SCOPES[args.role],
                     partner_id=args.partner, ttl_s=args.ttl))


if __name__ == "__main__":
    main()
