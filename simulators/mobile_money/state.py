"""The simulator's in-memory world: wallets, transactions, request states, behaviour."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Behaviour:
    """How the provider behaves (globally, or for one msisdn).

    The last group are the bad habits of real providers (see the README): each is
    off by default except ``honours_expiry``, whose realistic value is off too.
    """

    latency_s: float = 0.0            # before answering any API call
    processing_delay_s: float = 0.2   # between 202 and the final state
    failure_rate: float = 0.0         # share of payouts that fail
    timeout: bool = False             # never answer payout requests (nothing is recorded)
    lose_callbacks: bool = False      # never send the callback
    duplicate_callbacks: bool = False  # report each transaction twice (two webhook ids)
    callback_attempts: int = 8        # a callback answered 5xx or not at all is sent again
    # -- real providers' bad habits --------------------------------------------------
    execute_without_answer: bool = False  # execute the payout, never answer, never call back
    answer_delay_s: float = 0.0       # execute at once; answer and call back this much later
    honours_expiry: bool = False      # refuse/fail a request after its metadata.expiry
    callback_before_answer: bool = False  # call back (and wait for it) before the 202
    duplicate_delay_s: float = 0.0    # the second report of a duplicate comes this much later
    status_unknown_s: float = 0.0     # the status API denies a request (404) this long
    # -- the account-status lookup (GSMA GET /accounts/msisdn/{msisdn}/status) -------
    account_status: str = "auto"      # auto: unavailable when every payout fails
    #                                   (failure_rate 1), else available; or available,
    #                                   unavailable, unknown (404: no such account)
    lookup_unanswered: bool = False   # the lookup gets no answer (held open, then 504)

    def merged(self, changes: dict[str, Any]) -> Behaviour:
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in changes.items() if k in known and v is not None})


@dataclass
class Wallet:
    msisdn: str
    balance: Decimal = ZERO
    deposits: Decimal = ZERO
    payouts: Decimal = ZERO
    collections: Decimal = ZERO
    refunds: Decimal = ZERO

    def view(self) -> dict[str, Any]:
        expected = self.deposits + self.payouts - self.collections + self.refunds
        return {"msisdn": self.msisdn, "balance": str(self.balance),
                "deposits": str(self.deposits), "payouts": str(self.payouts),
                "collections": str(self.collections), "refunds": str(self.refunds),
                "consistent": expected == self.balance}


@dataclass
class Transaction:
    reference: str
    type: str          # disbursement | merchantpay | cashin
    purpose: str       # disbursement | refund | collection | cashin
    amount: Decimal
    currency: str
    msisdn: str
    account: str | None
    status: str
    created_at: dt.datetime
    completed_at: dt.datetime | None = None
    client_correlation_id: str | None = None
    server_correlation_id: str | None = None
    error: str | None = None
    hidden_until: dt.datetime | None = None  # the status API denies it until then

    def hidden(self, now: dt.datetime) -> bool:
        return self.hidden_until is not None and now < self.hidden_until

    def resource(self) -> dict[str, Any]:
        """The GSMA transaction object."""
        body: dict[str, Any] = {
            "transactionReference": self.reference, "type": self.type,
            "amount": str(self.amount), "currency": self.currency,
            "transactionStatus": self.status,
            "creationDate": self.created_at.isoformat(),
            "modificationDate": (self.completed_at or self.created_at).isoformat(),
        }
        if self.type == "disbursement":
            body["creditParty"] = [{"key": "msisdn", "value": self.msisdn}]
            body["debitParty"] = [{"key": "accountid", "value": self.account or "noria"}]
            body["descriptionText"] = self.purpose
            if self.account:
                body["requestingOrganisationTransactionReference"] = self.account
        else:
            body["debitParty"] = [{"key": "msisdn", "value": self.msisdn}]
            body["creditParty"] = [{"key": "accountid", "value": self.account or ""}]
        if self.client_correlation_id:
            body["clientCorrelationId"] = self.client_correlation_id
        if self.server_correlation_id:
            body["serverCorrelationId"] = self.server_correlation_id
        if self.error:
            body["errorDescription"] = self.error
        return body


@dataclass
class RequestState:
    server_correlation_id: str
    client_correlation_id: str
    body_hash: str
    status: str
    callback_url: str | None
    expiry: dt.datetime | None
    object_reference: str | None = None
    error: str | None = None
    hidden_until: dt.datetime | None = None  # the status API denies it until then

    def hidden(self, now: dt.datetime) -> bool:
        return self.hidden_until is not None and now < self.hidden_until

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "serverCorrelationId": self.server_correlation_id,
            "clientCorrelationId": self.client_correlation_id,
            "status": self.status,
            "notificationMethod": "callback" if self.callback_url else "polling",
            "objectReference": self.object_reference, "pollLimit": 100,
        }
        if self.error:
            body["errorReference"] = {"errorCategory": "businessRule",
                                      "errorCode": "transactionFailed",
                                      "errorDescription": self.error}
        return body


@dataclass
class World:
    provider: str
    callback_secret: str
    collection_callback_url: str
    default: Behaviour = field(default_factory=Behaviour)
    per_msisdn: dict[str, Behaviour] = field(default_factory=dict)
    wallets: dict[str, Wallet] = field(default_factory=dict)
    transactions: dict[str, Transaction] = field(default_factory=dict)
    requests: dict[str, RequestState] = field(default_factory=dict)      # by server id
    by_client_id: dict[str, str] = field(default_factory=dict)           # client → server id
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)  # msisdns asked about (account status)
    statement_tz: str = "UTC"          # the zone whose calendar day a statement covers
    hang_s: float = 3600.0             # how long an unanswered request is held open
    rng: random.Random = field(default_factory=random.Random)
    startup: Behaviour = field(init=False)  # what ``reset`` goes back to

    def __post_init__(self) -> None:
        self.startup = self.default

    def behaviour(self, msisdn: str | None) -> Behaviour:
        if msisdn is not None and msisdn in self.per_msisdn:
            return self.per_msisdn[msisdn]
        return self.default

    def wallet(self, msisdn: str) -> Wallet:
        return self.wallets.setdefault(msisdn, Wallet(msisdn))

    def new_reference(self) -> str:
        return f"{self.provider.upper()}-{uuid.uuid4().hex[:16].upper()}"

    def statement(self, day: dt.date, tz: str | None = None) -> list[dict[str, Any]]:
        """Completed payouts, refunds and collections whose completion falls on ``day``
        in ``tz`` (the world's ``statement_tz`` by default). A transaction the status
        API still denies (``status_unknown_s``) is listed all the same."""
        zone = ZoneInfo(tz or self.statement_tz)
        rows = [t for t in self.transactions.values()
                if t.status == "completed" and t.completed_at is not None
                and t.completed_at.astimezone(zone).date() == day and t.type != "cashin"]
        rows.sort(key=lambda t: t.completed_at or t.created_at)
        return [{"transactionReference": t.reference, "type": t.type, "purpose": t.purpose,
                 "status": t.status, "amount": str(t.amount), "currency": t.currency,
                 "msisdn": t.msisdn, "account": t.account,
                 "requestReference": t.account if t.type == "disbursement" else None,
                 "clientCorrelationId": t.client_correlation_id,
                 "serverCorrelationId": t.server_correlation_id,
                 "createdAt": t.created_at.isoformat(),
                 "completedAt": t.completed_at.isoformat() if t.completed_at else None}
                for t in rows]
