"""Pure platform rules: money parsing, envelopes, tokens, settings, problem+json."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from shared.auth import ROLE_SCOPES, AuthError, TokenVerifier, require
from shared.envelope import Contract, Envelope, UnknownMessageType, envelope_for, register
from shared.errors import Conflict
from shared.http import install_error_handlers
from shared.migrations import MigrationError, discover
from shared.money import Amount, PositiveAmount, parse_amount
from shared.settings import ServiceSettings, load_settings
from tests.identity import LocalIssuer, new_key


@register
class UnitThingHappened(Contract):
    topic: ClassVar[str] = "unit.events"
    thing_id: str
    amount: Amount


class TestMoney:
    def test_decimal_strings_are_accepted_and_normalised_to_cents(self) -> None:
        assert parse_amount("5000") == Decimal("5000.00")
        assert parse_amount("12.5") == Decimal("12.50")

    @pytest.mark.parametrize("bad", [5000.0, 12, "1.234", "1e3", "abc", "", None, "12,50"])
    def test_numbers_and_malformed_strings_are_refused(self, bad: object) -> None:
        with pytest.raises(ValueError):
            parse_amount(bad)

    def test_a_model_amount_serialises_as_a_string(self) -> None:
        class M(BaseModel):
            amount: PositiveAmount

        assert M(amount="10").model_dump(mode="json") == {"amount": "10.00"}
        with pytest.raises(ValidationError):
            M(amount="0.00")
        with pytest.raises(ValidationError):
            M.model_validate({"amount": 10.5})


class TestEnvelope:
    def test_round_trip_and_payload_validation(self) -> None:
        env = envelope_for(UnitThingHappened(thing_id="t1", amount=Decimal("3.10")),
                           aggregate_id="t1", correlation_id="c-1")
        again = Envelope.from_bytes(env.to_bytes())
        assert again == env
        parsed = again.parse()
        assert isinstance(parsed, UnitThingHappened)
        assert parsed.amount == Decimal("3.10")
        assert again.payload["amount"] == "3.10"

    def test_unknown_types_and_extra_fields_are_refused(self) -> None:
        env = Envelope(type="NothingLikeThis", aggregate_id="x", payload={})
        with pytest.raises(UnknownMessageType):
            env.parse()
        bad = Envelope(type="UnitThingHappened", aggregate_id="x",
                       payload={"thing_id": "t", "amount": "1.00", "surprise": 1})
        with pytest.raises(ValidationError):
            bad.parse()

    def test_contracts_are_frozen(self) -> None:
        thing = UnitThingHappened(thing_id="t", amount=Decimal("1"))
        with pytest.raises(ValidationError):
            thing.thing_id = "u"  # type: ignore[misc]


class TestTokens:
    """The services' token checks, against an issuer whose JWKS is handed over in memory."""

    issuer = LocalIssuer(realm="unit", base_url="http://issuer.test")

    def verifier(self, *extra: LocalIssuer, min_refresh_s: float = 0.0) -> TokenVerifier:
        by_url = {i.jwks_url: i for i in (self.issuer, *extra)}

        async def fetch(url: str) -> dict[str, object]:
            return by_url[url].jwks()

        return TokenVerifier({i.issuer: i.jwks_url for i in by_url.values()}, fetch=fetch,
                             min_refresh_s=min_refresh_s)

    async def test_minted_token_verifies_to_its_principal(self) -> None:
        token = self.issuer.mint(sub="agent-7", scopes=ROLE_SCOPES["partner"],
                                 partner_id="p-1", client_id="partner-p-1")
        who = await self.verifier().verify(token)
        assert (who.sub, who.partner_id, who.client_id) == ("agent-7", "p-1", "partner-p-1")
        assert who.can_see("p-1") and not who.can_see("p-2")

    async def test_expired_tampered_and_foreign_tokens_are_refused(self) -> None:
        verifier = self.verifier()
        old = self.issuer.mint(sub="a", ttl_s=10, now=time.time() - 100)
        with pytest.raises(AuthError, match="expired"):
            await verifier.verify(old)
        good = self.issuer.mint(sub="a", scopes=["clients:read"])
        head, body, sig = good.split(".")
        with pytest.raises(AuthError):
            await verifier.verify(f"{head}.{body}x.{sig}")
        stranger = LocalIssuer(realm="elsewhere", base_url="http://issuer.test")
        with pytest.raises(AuthError, match="issuer is not trusted"):
            await verifier.verify(stranger.mint(sub="a"))
        with pytest.raises(AuthError, match="invalid"):
            await verifier.verify(self.issuer.mint(sub="a", audience="account"))

    async def test_none_and_hmac_with_the_public_key_are_refused(self) -> None:
        verifier = self.verifier()
        claims = {"iss": self.issuer.issuer, "sub": "eve", "aud": "noria",
                  "exp": int(time.time()) + 60, "scopes": ["tenant:all"]}
        unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
        with pytest.raises(AuthError, match="algorithm"):
            await verifier.verify(unsigned)
        public_pem = self.issuer.keys[0].private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        forged = hmac_token(claims, public_pem, self.issuer.keys[0].kid)
        with pytest.raises(AuthError, match="algorithm"):
            await verifier.verify(forged)

    async def test_a_rotated_key_is_fetched_once_on_its_first_use(self) -> None:
        issuer = LocalIssuer(realm="rotating", base_url="http://issuer.test")
        fetched: list[str] = []

        async def fetch(url: str) -> dict[str, object]:
            fetched.append(url)
            return issuer.jwks()

        verifier = TokenVerifier({issuer.issuer: issuer.jwks_url}, fetch=fetch,
                                 min_refresh_s=0.0)
        await verifier.verify(issuer.mint(sub="a"))
        await verifier.verify(issuer.mint(sub="b"))
        assert len(fetched) == 1
        issuer.rotate(retire_old=True)
        new = [issuer.mint(sub=f"c{i}") for i in range(5)]
        who = await asyncio.gather(*(verifier.verify(t) for t in new))
        assert [w.sub for w in who] == [f"c{i}" for i in range(5)]
        assert len(fetched) == 2, "concurrent requests share one refresh"
        with pytest.raises(AuthError, match="key the issuer does not publish"):
            await verifier.verify(new_key_token(issuer))

    async def test_unknown_kids_do_not_hammer_the_issuer(self) -> None:
        fetched: list[str] = []

        async def fetch(url: str) -> dict[str, object]:
            fetched.append(url)
            return self.issuer.jwks()

        verifier = TokenVerifier({self.issuer.issuer: self.issuer.jwks_url}, fetch=fetch,
                                 min_refresh_s=60.0)
        for _ in range(5):
            with pytest.raises(AuthError):
                await verifier.verify(new_key_token(self.issuer))
        assert len(fetched) == 1

    def test_routes_check_scopes(self) -> None:
        app = FastAPI()
        app.state.token_verifier = self.verifier()
        install_error_handlers(app)

        @app.get("/things", dependencies=[require("clients:read")])
        async def things() -> dict[str, str]:
            return {"ok": "yes"}

        client = TestClient(app)
        anonymous = client.get("/things")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        wallet = self.issuer.mint(sub="w", scopes=ROLE_SCOPES["wallet"], partner_id="p")
        assert client.get("/things", headers={"Authorization": f"Bearer {wallet}"}
                          ).status_code == 403
        partner = self.issuer.mint(sub="p", scopes=ROLE_SCOPES["partner"], partner_id="p")
        assert client.get("/things", headers={"Authorization": f"Bearer {partner}"}
                          ).json() == {"ok": "yes"}


def hmac_token(claims: dict[str, object], secret: bytes, kid: str) -> str:
    """HS256 signed with ``secret`` (PyJWT refuses a PEM as an HMAC key: sign by hand)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def new_key_token(issuer: LocalIssuer) -> str:
    """Signed by a key the issuer never published."""
    return issuer.mint(sub="x", key=new_key())

class PayBody(BaseModel):
    amount: PositiveAmount


class TestProblems:
    def test_validation_errors_name_the_field(self) -> None:
        app = FastAPI()
        install_error_handlers(app)

        @app.post("/pay")
        async def pay(body: PayBody) -> dict[str, str]:
            raise Conflict("already paid", field="amount")

        client = TestClient(app)
        resp = client.post("/pay", json={"amount": 12.5})
        assert resp.status_code == 422
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["errors"][0]["field"] == "amount"
        conflict = client.post("/pay", json={"amount": "12.50"})
        assert conflict.status_code == 409
        assert conflict.json()["detail"] == "already paid"


class TestSettings:
    def test_missing_variable_is_named_at_start_up(self, monkeypatch, capsys) -> None:
        from pydantic_settings import SettingsConfigDict

        class DemoSettings(ServiceSettings):
            model_config = SettingsConfigDict(env_prefix="NORIA_DEMO_")

        monkeypatch.delenv("NORIA_DEMO_DATABASE_URL", raising=False)
        monkeypatch.setenv("NORIA_DEMO_HTTP_PORT", "not-a-port")
        with pytest.raises(SystemExit):
            load_settings(DemoSettings)
        err = capsys.readouterr().err
        assert "NORIA_DEMO_DATABASE_URL: missing" in err
        assert "NORIA_DEMO_HTTP_PORT" in err


def test_migrations_are_named_and_ordered(tmp_path) -> None:
    (tmp_path / "0002_second.sql").write_text("select 2")
    (tmp_path / "0001_first.sql").write_text("select 1")
    names = [m.name for m in discover(tmp_path)]
    assert names[0].startswith("platform/")
    assert names[-2:] == ["service/0001_first.sql", "service/0002_second.sql"]
    (tmp_path / "3_bad.sql").write_text("select 3")
    with pytest.raises(MigrationError):
        discover(tmp_path)


class TestLimits:
    def test_every_session_carries_statement_lock_and_idle_timeouts(self) -> None:
        from shared.db import NO_STATEMENT_TIMEOUT, DbLimits, server_settings

        s = server_settings("loans", DbLimits(15, 5, 30), role="http")
        assert (s["statement_timeout"], s["lock_timeout"],
                s["idle_in_transaction_session_timeout"]) == ("15000", "5000", "30000")
        assert s["search_path"] == "loans" and s["application_name"] == "noria-loans-http"
        assert NO_STATEMENT_TIMEOUT.server_settings()["statement_timeout"] == "0"
        assert NO_STATEMENT_TIMEOUT.server_settings()["lock_timeout"] != "0"

    def test_limits_are_settings_overridable_per_service(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("NORIA_DATABASE_URL", "postgresql://x/y")
        monkeypatch.setenv("NORIA_DB_STATEMENT_TIMEOUT_S", "3")
        s = ServiceSettings()
        assert s.db_statement_timeout_s == 3
        assert s.db_acquire_timeout_s > 0 and s.retention_days > 7

    @pytest.mark.parametrize("exc", ["QueryCanceledError", "LockNotAvailableError",
                                     "DeadlockDetectedError", "SerializationError",
                                     "ConnectionWaitTimeout"])
    def test_a_cancelled_statement_or_a_full_pool_is_503_with_retry_after(
            self, exc: str) -> None:
        import asyncpg

        from shared.db import ConnectionWaitTimeout

        error = (ConnectionWaitTimeout("no connection") if exc == "ConnectionWaitTimeout"
                 else getattr(asyncpg.exceptions, exc)("canceling statement"))
        app = FastAPI()
        install_error_handlers(app)

        @app.get("/x")
        async def x() -> None:
            raise error

        resp = TestClient(app, raise_server_exceptions=False).get("/x")
        assert resp.status_code == 503
        assert resp.headers["content-type"] == "application/problem+json"
        assert int(resp.headers["retry-after"]) >= 1


class TestRetryPolicy:
    def test_backoff_grows_exponentially_with_jitter_and_is_capped(self) -> None:
        from shared.retry import RetryPolicy

        p = RetryPolicy(attempts=5, wait_initial_s=0.2, wait_max_s=1.0)
        for _ in range(50):
            assert 0.2 <= p.backoff_s(1) <= 0.4
            assert 0.4 <= p.backoff_s(2) <= 0.6
            assert p.backoff_s(10) == 1.0

    def test_a_handlers_timeout_is_its_failure_not_a_database_outage(self) -> None:
        import asyncpg

        from shared.db import ConnectionWaitTimeout
        from shared.inbox import DatabaseUnreachable, handler_failure, waits_for_database

        assert handler_failure(TimeoutError("provider did not answer"))
        assert handler_failure(ConnectionRefusedError("provider refused"))
        assert handler_failure(asyncpg.exceptions.QueryCanceledError("statement timeout"))
        assert waits_for_database(asyncpg.exceptions.AdminShutdownError("restart"))
        assert waits_for_database(ConnectionWaitTimeout("pool full"))
        assert waits_for_database(DatabaseUnreachable("refused"))

    async def test_a_cancelled_handler_is_not_retried(self) -> None:
        """A consumer stopped mid-handler (its replica leaving the group) stops at once:
        the retry block sees the cancellation and must not spend an attempt on it."""
        import asyncio

        from shared.inbox import handler_failure
        from shared.retry import RetryPolicy

        runs = 0
        with pytest.raises(asyncio.CancelledError):
            async for attempt in RetryPolicy(attempts=3, wait_initial_s=0.01,
                                             wait_max_s=0.01).attempts_for(handler_failure):
                with attempt:
                    runs += 1
                    raise asyncio.CancelledError()
        assert runs == 1
        assert not handler_failure(asyncio.CancelledError())


class TestDatabaseRules:
    def test_a_rule_the_database_enforces_is_a_409_problem_not_a_500(self) -> None:
        """Two postings racing past a shared account's zero: the second is refused at its
        commit by the database's CHECK, which reaches the caller as a conflict."""
        import asyncpg

        app = FastAPI()
        install_error_handlers(app)
        raised = {"constraint": "account_not_negative"}

        @app.post("/payouts")
        async def payout() -> dict[str, str]:
            raise asyncpg.exceptions.CheckViolationError.new(
                {"C": "23514", "M": "new row for relation \"accounts\" violates check",
                 "n": raised["constraint"]})

        client = TestClient(app, raise_server_exceptions=False)
        answer = client.post("/payouts")
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "https://noria.dev/problems/insufficient_balance"
        raised["constraint"] = "payouts_amount_check"
        other = client.post("/payouts").json()
        assert other["type"] == "https://noria.dev/problems/constraint_violation"
        assert "payouts_amount_check" in other["detail"]
