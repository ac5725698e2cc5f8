"""Scenario 7: who may ask what.

- Every operation of every service's OpenAPI document refuses a request without a
  token, with an expired token and with a tampered token (401 problem+json);
  only the health probes answer, and the mobile-money callback, which has its own
  signature, refuses an unsigned request just the same. The simulators stand for
  outside parties and are not services: they are exempt.
- A partner never sees another partner's clients, loans, payments or messages.
- A mobile-money callback with a bad or stale signature moves nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from services.payments.domain.webhooks import sign
from services.payments.settings import DEV_CALLBACK_SECRET
from shared.auth import ROLE_SCOPES
from tests.e2e.bank import Bank, bearer, eventually
from tests.identity import LocalIssuer, issuer, mint_token, new_key

pytestmark = pytest.mark.e2e
D = Decimal
SERVICES = ("clients", "loans", "payments", "notifications")
PROBLEM = "application/problem+json"
# Values for path parameters: a well-formed id of nothing, so that only the token decides.
PATH_VALUES = {"dead_letter_id": "1", "day": "2026-01-15", "provider": "sim",
               "name": "kyc_verified"}


def expired_token() -> str:
    return mint_token(sub="operator-gone", scopes=ROLE_SCOPES["operator"],
                      ttl_s=3600, now=time.time() - 2 * 86400)


def tampered_token() -> str:
    """A partner's token whose payload was rewritten to claim every tenant; the signature
    no longer matches."""
    token = mint_token(sub="partner-mallory",
                       scopes=ROLE_SCOPES["partner"], partner_id="partner-mallory")
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scopes"] = list(ROLE_SCOPES["operator"])
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


OPERATOR = ROLE_SCOPES["operator"]


def another_realm() -> str:
    """Signed by a realm the platform does not trust (its own keys, its own issuer)."""
    return LocalIssuer(realm="elsewhere", base_url=issuer().issuer.split("/realms/")[0]).mint(
        sub="operator-eve", scopes=OPERATOR)


def another_issuer() -> str:
    """Claims the trusted issuer's name but is signed by a stranger's key."""
    return issuer().mint(sub="operator-eve", scopes=OPERATOR, key=new_key())


def another_audience() -> str:
    return issuer().mint(sub="operator-eve", scopes=OPERATOR, audience="account")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims() -> dict[str, Any]:
    return {"iss": issuer().issuer, "sub": "operator-eve", "aud": "noria",
            "exp": int(time.time()) + 600, "scopes": list(OPERATOR)}


def alg_none() -> str:
    head = _b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": issuer().keys[0].kid}))
    return f"{head}.{_b64(orjson.dumps(_claims()))}."


def hs256_with_the_public_key() -> str:
    """The classic key-confusion forgery: HMAC keyed with the JWKS's own public key."""
    key = issuer().keys[0]
    secret = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}))
    body = _b64(orjson.dumps(_claims()))
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


async def operations(http: httpx.AsyncClient, base: str) -> list[tuple[str, str]]:
    doc = (await http.get(f"{base}/openapi.json")).json()
    ops = []
    for path, item in doc["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path))
    return ops


async def test_no_route_answers_without_a_valid_token(bank: Bank) -> None:
    credentials: dict[str, dict[str, str]] = {
        "no token": {},
        "expired": {"Authorization": f"Bearer {expired_token()}"},
        "tampered": {"Authorization": f"Bearer {tampered_token()}"},
        "another realm": {"Authorization": f"Bearer {another_realm()}"},
        "another issuer's key": {"Authorization": f"Bearer {another_issuer()}"},
        "another audience": {"Authorization": f"Bearer {another_audience()}"},
        "alg=none": {"Authorization": f"Bearer {alg_none()}"},
        "HS256 with the JWKS key": {"Authorization": f"Bearer {hs256_with_the_public_key()}"},
        "not a bearer": {"Authorization": "Basic b3BlcmF0b3I6b3BlcmF0b3I="},
    }
    refused: list[str] = []
    wrong: list[str] = []
    async with httpx.AsyncClient(timeout=10) as http:
        for svc in SERVICES:
            base = bank.platform.url(svc)
            ops = await operations(http, base)
            assert len(ops) > 8, (svc, ops)
            for method, path in ops:
                if path.startswith("/health/"):
                    continue
                url = base + path.format_map(
                    {k: PATH_VALUES.get(k, f"e2e-{uuid.uuid4().hex[:8]}")
                     for k in _params(path)})
                for label, headers in credentials.items():
                    resp = await http.request(
                        method, url, headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                        json={} if method in ("POST", "PUT", "PATCH") else None)
                    where = f"{svc} {method} {path} ({label}): {resp.status_code}"
                    if resp.status_code == 401 and resp.headers.get(
                            "content-type", "").startswith(PROBLEM):
                        refused.append(where)
                    else:
                        wrong.append(f"{where} {resp.headers.get('content-type')} "
                                     f"{resp.text[:200]}")
    assert wrong == []
    assert len(refused) > 40 * len(credentials)


async def test_a_token_without_the_scope_is_refused_everywhere(bank: Bank) -> None:
    """A valid token of the trusted issuer that carries no scope: 401 or 403 problem+json
    on every route (none answers 2xx, none leaks data)."""
    empty = {"Authorization": f"Bearer {mint_token(sub='nobody', scopes=[])}"}
    wrong: list[str] = []
    forbidden = 0
    async with httpx.AsyncClient(timeout=10) as http:
        for svc in SERVICES:
            base = bank.platform.url(svc)
            for method, path in await operations(http, base):
                if path.startswith("/health/"):
                    continue
                url = base + path.format_map(
                    {k: PATH_VALUES.get(k, f"e2e-{uuid.uuid4().hex[:8]}")
                     for k in _params(path)})
                resp = await http.request(
                    method, url, headers={**empty, "Idempotency-Key": uuid.uuid4().hex},
                    json={} if method in ("POST", "PUT", "PATCH") else None)
                ok = resp.status_code in (401, 403) and resp.headers.get(
                    "content-type", "").startswith(PROBLEM)
                forbidden += resp.status_code == 403
                if not ok:
                    wrong.append(f"{svc} {method} {path}: {resp.status_code} {resp.text[:200]}")
    assert wrong == []
    assert forbidden > 40


def _params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


async def test_a_partner_never_sees_another_partners_data(bank: Bank) -> None:
    atlas = f"partner-atlas-{uuid.uuid4().hex[:6]}"
    sahara = f"partner-sahara-{uuid.uuid4().hex[:6]}"
    mine, theirs = bearer("partner", partner=atlas), bearer("partner", partner=sahara)
    who = await bank.onboard(partner=atlas)
    product = await bank.product()
    loan_id = await bank.apply(who, product, "1200.00", 3)
    await bank.approve(loan_id)
    await bank.wait_status(loan_id, "active")
    [saga] = (await bank.call("GET", "loans", "/v1/sagas", headers=bank.maker,
                              params={"loan_id": loan_id}))["items"]
    [sms] = await bank.wait_sms(who.client_id, "loan_disbursed")
    await bank.call("POST", "mobile-money-sim", "/sim/cash-in", headers={}, expect=201,
                    json={"msisdn": who.phone, "amount": "100.00"})
    # A wallet reports a repayment by naming the provider's transaction (issue 13: confirmed
    # with the provider before anything is credited); the provider's own callback is lost,
    # so the payment is the wallet's report.
    await bank.sim_config(msisdn=who.phone, lose_callbacks=True)
    collected = await bank.call("POST", "mobile-money-sim", "/sim/collections", headers={},
                                expect=201, json={"msisdn": who.phone, "amount": "100.00",
                                                  "reference": loan_id})
    wallet = bearer("wallet", partner="sim")
    paid = await bank.call("POST", "payments", "/v1/repayments", expect=202,
                           headers={**wallet,
                                    "Idempotency-Key": uuid.uuid4().hex},
                           json={"loan_id": loan_id, "amount": "100.00", "currency": "MAD",
                                 "payer_msisdn": who.phone,
                                 "external_ref": f"w-{uuid.uuid4().hex[:10]}",
                                 "provider_reference": collected["transactionReference"]})

    # (A repayment belongs to the wallet that reported it, which sees it.)
    reads = [
        ("clients", f"/v1/clients/{who.client_id}", mine),
        ("clients", f"/v1/clients/{who.client_id}/credit", mine),
        ("loans", f"/v1/loans/{loan_id}", mine),
        ("loans", f"/v1/loans/{loan_id}/schedule", mine),
        ("payments", f"/v1/payments/{saga['id']}", mine),
        ("payments", f"/v1/payments/{paid['payment_id']}", wallet),
        ("notifications", f"/v1/messages/{sms['id']}", mine),
    ]
    for svc, path, owner in reads:
        await bank.call("GET", svc, path, headers=owner)  # its owner sees it
        resp = await bank.http.get(bank.url(svc, path), headers=theirs)
        assert resp.status_code == 404, (svc, path, resp.status_code, resp.text)
        assert resp.headers["content-type"].startswith(PROBLEM)

    # Lists never show them either.
    clients = await bank.call("GET", "clients", "/v1/clients", headers=theirs)
    assert who.client_id not in str(clients)
    loans = await bank.call("GET", "loans", "/v1/loans", headers=theirs,
                            params={"client_id": who.client_id})
    assert loan_id not in str(loans)
    messages = await bank.http.get(bank.url("notifications", "/v1/messages"), headers=theirs,
                                   params={"client_id": who.client_id})
    assert messages.status_code == 404 or messages.json() == [], messages.text
    # ... and writes on them are refused the same way, changing nothing.
    for svc, path, body in [
        ("clients", f"/v1/clients/{who.client_id}", {"language": "ar"}),
        ("loans", f"/v1/loans/{loan_id}/withdraw", {}),
    ]:
        method = "PATCH" if svc == "clients" else "POST"
        resp = await bank.http.request(method, bank.url(svc, path), headers=theirs, json=body)
        assert resp.status_code == 404, (svc, path, resp.status_code, resp.text)
    resp = await bank.http.post(bank.url("loans", "/v1/loans"), headers=theirs, json={
        "client_id": who.client_id, "product_id": product, "principal": "1000.00",
        "term": 3})
    assert resp.status_code in (404, 422), resp.text
    assert (await bank.call("GET", "clients", f"/v1/clients/{who.client_id}",
                            headers=mine))["language"] == "fr"
    assert (await bank.loan(loan_id))["status"] == "active"


async def test_a_callback_with_a_bad_or_stale_signature_moves_nothing(bank: Bank) -> None:
    nadia = await bank.onboard()
    product = await bank.product(annual_rate="0.00", max_term=2)
    loan_id = await bank.apply(nadia, product, "2000.00", 2)
    await bank.approve(loan_id)
    await bank.wait_status(loan_id, "active")

    # The wallet collects 500.00 but its callback never reaches Noria.
    await bank.sim_config(msisdn=nadia.phone, lose_callbacks=True)
    collected = await bank.call("POST", "mobile-money-sim", "/sim/collections", headers={},
                                expect=201, json={"msisdn": nadia.phone, "amount": "500.00",
                                                  "reference": loan_id})
    ref = collected["transactionReference"]
    resource = await bank.call("GET", "mobile-money-sim", f"/transactions/{ref}", headers={})
    body = orjson.dumps(resource)
    url = bank.url("payments", "/v1/mobile-money/sim/callbacks")

    async def state() -> dict[str, Any]:
        trial = await bank.call("GET", "payments", "/v1/ledger/trial-balance",
                                headers=bank.maker)
        books = await bank.call("GET", "payments", f"/v1/loans/{loan_id}/portfolio-balance",
                                headers=bank.maker)
        return {"trial": trial, "books": books, "wallet": await bank.wallet(nadia.phone),
                "owed": (await bank.loan(loan_id))["outstanding"]}

    before = await state()
    now = int(time.time())
    tampered = orjson.dumps({**resource, "amount": "5000.00"})
    attempts = {
        "signed with another secret": (body, now, sign("whsec_" + base64.b64encode(
            b"someone-else-entirely").decode(), "msg_bad", now, body), "msg_bad"),
        "stale (an hour old)": (body, now - 3600,
                                sign(DEV_CALLBACK_SECRET, "msg_old", now - 3600, body),
                                "msg_old"),
        "from the future": (body, now + 3600,
                            sign(DEV_CALLBACK_SECRET, "msg_future", now + 3600, body),
                            "msg_future"),
        "body changed after signing": (tampered, now,
                                       sign(DEV_CALLBACK_SECRET, "msg_tamp", now, body),
                                       "msg_tamp"),
        "no signature": (body, now, "", "msg_none"),
    }
    for label, (raw, ts, signature, msg_id) in attempts.items():
        headers = {"content-type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(ts), "webhook-signature": signature}
        resp = await bank.http.post(url, content=raw, headers=headers)
        assert resp.status_code == 401, (label, resp.status_code, resp.text)
        assert resp.headers["content-type"].startswith(PROBLEM), label
    assert await state() == before

    # The same callback, properly signed, does move the money: the refusals were the
    # signature's doing, not the body's.
    msg_id = f"msg_{uuid.uuid4().hex}"
    resp = await bank.http.post(url, content=body, headers={
        "content-type": "application/json", "webhook-id": msg_id,
        "webhook-timestamp": str(now), "webhook-signature": sign(DEV_CALLBACK_SECRET, msg_id,
                                                                 now, body)})
    assert resp.status_code == 200, resp.text

    async def repaid() -> bool:
        return D((await bank.loan(loan_id))["outstanding"]["principal"]) == D("1500.00")

    await eventually(repaid, what="the signed callback's repayment applied")
    await bank.sim_config(msisdn=nadia.phone, reset=True)
    await bank.check_invariants([loan_id])


async def test_a_rotated_signing_key_is_accepted_without_a_restart(bank: Bank) -> None:
    """The issuer starts signing with a new key: every service fetches it on first sight
    (unknown ``kid``) and accepts the token; no process is restarted."""
    restarts = {name: m.restarts for name, m in bank.platform.procs.items()}
    new = issuer().rotate()
    token = issuer().mint(sub="operator-rotated", scopes=ROLE_SCOPES["operator"], key=new)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as http:
        for svc in SERVICES:
            async def accepted(svc: str = svc) -> bool | None:
                resp = await http.get(bank.platform.url(svc) + "/v1/dead-letters",
                                      headers=headers)
                return True if resp.status_code == 200 else None

            await eventually(accepted, timeout_s=15, what=f"{svc} accepts the rotated key")
    assert {name: m.restarts for name, m in bank.platform.procs.items()} == restarts
