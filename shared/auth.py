"""Bearer-token auth: the identity provider's signed JWTs (RS256/ES256, checked against
its JWKS) carrying ``sub``, ``azp``, ``partner_id`` and ``scopes``.

Scopes are ``<area>:<action>``. Partner tokens carry their ``partner_id`` and see
only their own data; operator tokens carry ``tenant:all``.

An operator token may also be scoped to an office: ``office_id`` and ``office_path``,
the office's materialised path in the hierarchy (``ho/r-souss/b-agadir``). Such a token
sees what belongs to that office and its subtree (``can_see_office``); a token without
an office (head office) sees every office.

Tokens are issued by the identity provider (Keycloak's ``noria`` realm), never by a
service. A token is accepted only when

- its header names RS256 or ES256 (``none`` and HMAC algorithms are refused before
  anything else, so a JWKS public key can never serve as an HMAC secret);
- its ``iss`` is one of the trusted issuers, checked before any key is fetched, so a
  stranger cannot make a service call a URL of their choosing;
- its ``kid`` is a key of that issuer's JWKS. The keys are cached; an unknown ``kid``
  refreshes the cache (one fetch shared by concurrent requests, at most one per
  ``min_refresh_s``), so a rotated signing key is accepted without any restart;
- its signature, ``aud`` (``noria``), ``exp`` and ``sub`` check out.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ALGORITHMS = ("RS256", "ES256")
AUDIENCE = "noria"
DEFAULT_ISSUER = "http://127.0.0.1:8180/realms/noria"
JWKS_PATH = "/protocol/openid-connect/certs"

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "partner": (
        "clients:read", "clients:write", "loans:read", "loans:write",
        "payments:read", "messages:read",
    ),
    "operator": (
        "tenant:all", "clients:read", "clients:write", "clients:kyc", "loans:read",
        "loans:write", "loans:approve", "products:write", "cob:run", "payments:read",
        "ledger:read", "ledger:write", "ledger:approve", "messages:read", "messages:resend",
        "templates:write", "dlq:read", "dlq:replay", "refunds:retry", "payouts:settle",
        "reconciliation:resolve",
        "savings:read", "savings:write", "savings:approve", "org:write", "org:approve",
        "partners:read", "partners:write", "audit:read",
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
    client_id: str | None = None
    """The OAuth2 client the token was issued to (``azp``): the partner's or wallet's
    client, or the console for an operator."""
    username: str | None = None
    """``preferred_username``: the operator's login name, for display only."""

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


def jwks_url_for(issuer: str) -> str:
    """The JWKS of a Keycloak realm (or of anything laid out like one)."""
    return issuer.rstrip("/") + JWKS_PATH


JwksFetcher = Callable[[str], Awaitable[dict[str, Any]]]


async def fetch_jwks(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


class JwksCache:
    """One issuer's signing keys by ``kid``, fetched over HTTP and cached.

    Refreshed when a token names an unknown ``kid`` (at most once per
    ``min_refresh_s``; concurrent requests wait on the same fetch) and when the
    cache is older than ``max_age_s`` (so a key the provider removed stops working).
    """

    def __init__(self, url: str, *, fetch: JwksFetcher = fetch_jwks,
                 min_refresh_s: float = 10.0, max_age_s: float = 300.0) -> None:
        self.url = url
        self._fetch = fetch
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self.fetches = 0
        # asyncio locks belong to one event loop; tests run several loops in one process.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > self.max_age_s
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock():
            now = time.monotonic()
            stale = now - self._fetched_at > self.max_age_s
            if kid in self._keys and not stale:
                return self._keys[kid]  # another request refreshed meanwhile
            if stale or now - self._attempted_at >= self.min_refresh_s:
                await self._refresh()
        if kid not in self._keys:
            raise AuthError("the token is signed with a key the issuer does not publish")
        return self._keys[kid]

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetches += 1
        try:
            document = await self._fetch(self.url)
        except Exception as exc:
            if self._keys:  # keep serving the keys we have; try again after min_refresh_s
                return
            raise AuthError(f"the issuer's keys cannot be fetched ({type(exc).__name__})",
                            status=503) from None
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg") not in ALGORITHMS or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()


class TokenVerifier:
    """Checks tokens of the trusted issuers (see the module's docstring)."""

    def __init__(self, issuers: dict[str, str], *, audience: str = AUDIENCE,
                 fetch: JwksFetcher = fetch_jwks, min_refresh_s: float = 10.0,
                 max_age_s: float = 300.0, leeway_s: float = 5.0) -> None:
        if not issuers:
            raise ValueError("at least one trusted issuer is needed")
        self.audience = audience
        self.leeway_s = leeway_s
        self.caches = {iss: JwksCache(url, fetch=fetch, min_refresh_s=min_refresh_s,
                                      max_age_s=max_age_s)
                       for iss, url in issuers.items()}

    @property
    def issuers(self) -> list[str]:
        return list(self.caches)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"the token is invalid: {exc}") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthError(f"the token's algorithm {alg!r} is not accepted")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.caches:
            raise AuthError("the token's issuer is not trusted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("the token names no signing key (kid)")
        key = await self.caches[issuer].key(kid)
        if key.algorithm_name != alg:
            raise AuthError("the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[alg], issuer=issuer, audience=self.audience,
                leeway=self.leeway_s, options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the token is invalid: {exc}") from None
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    scopes = claims.get("scopes", [])
    if isinstance(scopes, str):  # a single-valued multivalued claim some providers flatten
        scopes = [scopes]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise AuthError("the token's scopes claim must be a list of strings")
    partner = claims.get("partner_id")
    office = claims.get("office_id")
    office_path = claims.get("office_path")
    if (office is not None and not isinstance(office, str)) or (
            office_path is not None and not isinstance(office_path, str)):
        raise AuthError("the token's office claims must be strings")
    azp = claims.get("azp")
    username = claims.get("preferred_username")
    return Principal(
        sub=str(claims["sub"]),
        partner_id=str(partner) if partner else None,
        scopes=frozenset(scopes),
        office_id=office or None,
        office_path=(office_path or office) if office else None,
        client_id=str(azp) if azp else None,
        username=str(username) if username else None,
    )


def trusted_issuers(issuer: str, jwks_url: str = "", extra: str = "") -> dict[str, str]:
    """Issuer → JWKS URL: ``issuer`` (its JWKS at ``jwks_url`` or the realm's default)
    and the comma-separated ``extra`` issuers (each at its realm's default JWKS)."""
    issuers = {issuer: jwks_url or jwks_url_for(issuer)}
    for other in (e.strip() for e in extra.split(",")):
        if other and other not in issuers:
            issuers[other] = jwks_url_for(other)
    return issuers


def verifier_for(settings: Any) -> TokenVerifier:
    """The verifier of a settings object with the ``oidc_*`` fields."""
    return TokenVerifier(
        trusted_issuers(settings.oidc_issuer, settings.oidc_jwks_url,
                        settings.oidc_extra_issuers),
        audience=settings.oidc_audience, min_refresh_s=settings.oidc_jwks_min_refresh_s)


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(credentials.credentials)
    request.state.principal = principal
    from shared.audit import note_principal  # shared.audit's router needs this module

    note_principal(principal)  # a write request's audit record learns who
    return principal


def require(*scopes: str) -> object:
    """FastAPI dependency: the caller's token must carry every one of ``scopes``; a
    partner's or wallet's request also counts against its client's rate limit."""

    async def dependency(
        request: Request,
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise AuthError(f"the token lacks the scope(s): {', '.join(missing)}", status=403)
        limiter = getattr(request.app.state, "rate_limiter", None)
        if limiter is not None and not principal.sees_all_tenants:
            # partners and wallets: one token of their client's bucket (shared.ratelimit)
            limiter.take(principal.client_id or principal.partner_id or principal.sub,
                         principal.partner_id)
        return principal

    return Depends(dependency)
