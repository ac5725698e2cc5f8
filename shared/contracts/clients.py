"""Contracts of the clients service: its events, and the commands it accepts.

Events go to ``clients.events`` keyed by client id; commands from the loans saga
come on ``clients.commands`` keyed by client id.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.contracts.common import Amount, Currency, Language, Msisdn, PositiveAmount
from shared.envelope import Contract, register

EVENTS = "clients.events"
COMMANDS = "clients.commands"


class ClientEvent(Contract):
    topic: ClassVar[str] = EVENTS
    client_id: str


class ClientCommand(Contract):
    topic: ClassVar[str] = COMMANDS
    kind: ClassVar[str] = "command"
    client_id: str


@register
class ClientRegistered(ClientEvent):
    partner_id: str
    full_name: str
    phone: Msisdn
    language: Language
    sms_consent: bool
    region: str | None = None
    # The office (id and materialised path, ``ho/r-souss/b-agadir``) and loan officer
    # the client belongs to (optional: added after v1).
    office_id: str | None = None
    office_path: str | None = None
    officer_id: str | None = None


@register
class ClientKycVerified(ClientEvent):
    verified_by: str
    # What notifications needs to reach the client (optional: added after v1).
    phone: Msisdn | None = None
    language: Language | None = None
    sms_consent: bool | None = None


@register
class ClientKycRejected(ClientEvent):
    rejected_by: str
    reason: str
    # What notifications needs to reach the client (optional: added after v1).
    phone: Msisdn | None = None
    language: Language | None = None
    sms_consent: bool | None = None


@register
class ClientPhoneChanged(ClientEvent):
    phone: Msisdn
    previous_phone: Msisdn | None = None
    language: Language | None = None
    sms_consent: bool | None = None


@register
class ClientLanguageChanged(ClientEvent):
    language: Language
    phone: Msisdn | None = None
    sms_consent: bool | None = None


@register
class ClientConsentChanged(ClientEvent):
    sms_consent: bool
    source: Literal["api", "sms_stop", "operator"] = "api"
    phone: Msisdn | None = None
    language: Language | None = None


@register
class ClientBlocked(ClientEvent):
    reason: str
    blocked_by: str
    # What notifications needs to reach the client (optional: added after v1).
    phone: Msisdn | None = None
    language: Language | None = None
    sms_consent: bool | None = None


@register
class ClientUnblocked(ClientEvent):
    reason: str
    unblocked_by: str
    # What notifications needs to reach the client (optional: added after v1).
    phone: Msisdn | None = None
    language: Language | None = None
    sms_consent: bool | None = None


@register
class GroupFormed(Contract):
    topic: ClassVar[str] = EVENTS
    group_id: str
    partner_id: str
    name: str
    leader_id: str
    member_ids: list[str]
    office_id: str | None = None
    office_path: str | None = None
    officer_id: str | None = None


@register
class GroupDissolved(Contract):
    topic: ClassVar[str] = EVENTS
    group_id: str
    partner_id: str
    dissolved_by: str
    reason: str
    member_ids: list[str]
    office_id: str | None = None
    office_path: str | None = None
    officer_id: str | None = None


@register
class GroupMemberRemoved(Contract):
    """A member left an active group (keyed by group id); ``member_ids``: who remains.
    Refused while the group has a live group loan."""

    topic: ClassVar[str] = EVENTS
    group_id: str
    partner_id: str
    client_id: str
    removed_by: str
    reason: str
    member_ids: list[str]
    office_id: str | None = None
    office_path: str | None = None
    officer_id: str | None = None


# --- the organisation: offices, staff, transfers --------------------------------

OfficeKind = Literal["head_office", "region", "branch", "mobile_unit"]


@register
class OfficeOpened(Contract):
    """Keyed by office id. ``path`` is the materialised path of stable ids, never changed."""

    topic: ClassVar[str] = EVENTS
    office_id: str
    office_kind: OfficeKind
    name: str
    parent_id: str | None
    path: str
    opened_by: str


@register
class OfficeChanged(Contract):
    """An office renamed or closed; keyed by office id."""

    topic: ClassVar[str] = EVENTS
    office_id: str
    office_kind: OfficeKind
    name: str
    path: str
    status: Literal["open", "closed"]
    changed_by: str


@register
class StaffAssigned(Contract):
    """A staff member attached to an office (on creation, on a move, on deactivation);
    keyed by staff id."""

    topic: ClassVar[str] = EVENTS
    staff_id: str
    full_name: str
    role: Literal["loan_officer", "branch_manager"]
    office_id: str
    office_path: str
    active: bool = True
    previous_office_id: str | None = None
    assigned_by: str


@register
class ClientTransferred(ClientEvent):
    """An approved transfer: the client (and its loans) now belong to ``to_office_id``
    and ``to_officer_id`` (None: no officer yet). Keyed by client id."""

    request_id: str
    partner_id: str
    from_office_id: str
    from_office_path: str
    to_office_id: str
    to_office_path: str
    from_officer_id: str | None = None
    to_officer_id: str | None = None
    requested_by: str
    approved_by: str


@register
class LoanOfficerReassigned(Contract):
    """One client or one group of a reassigned portfolio now has ``to_officer_id``; its
    office is unchanged. Keyed by the client's (or the group's) id, so it stays in order
    with that aggregate's other events; one per client and per group of the request."""

    topic: ClassVar[str] = EVENTS
    request_id: str
    client_id: str | None = None
    group_id: str | None = None
    office_id: str
    office_path: str
    from_officer_id: str
    to_officer_id: str
    requested_by: str
    approved_by: str


@register
class CreditLimitChanged(ClientEvent):
    credit_limit: Amount
    cycle: int
    currency: Currency = "MAD"
    previous_limit: Amount | None = None
    phone: Msisdn | None = None
    language: Language | None = None
    sms_consent: bool | None = None


# --- the saga's commands and their replies ------------------------------------

@register
class ReserveCredit(ClientCommand):
    """Reserve ``amount`` of the client's credit limit for a loan (idempotent on id)."""

    reservation_id: str
    saga_id: str
    loan_id: str
    amount: PositiveAmount
    currency: Currency = "MAD"


@register
class ReleaseCredit(ClientCommand):
    """Give back a reservation (compensation); idempotent on ``reservation_id``."""

    reservation_id: str
    saga_id: str
    loan_id: str
    reason: str


@register
class CreditReserved(ClientEvent):
    reservation_id: str
    saga_id: str
    loan_id: str
    amount: Amount
    currency: Currency = "MAD"
    credit_limit: Amount
    exposure: Amount
    # What the disbursement needs to reach the borrower's wallet.
    msisdn: Msisdn
    language: Language


@register
class CreditRejected(ClientEvent):
    reservation_id: str
    saga_id: str
    loan_id: str
    reason: Literal[
        "kyc_not_verified", "client_blocked", "limit_exceeded", "unknown_client",
        "currency_not_supported", "client_in_arrears", "written_off_loan",
    ]
    detail: str = ""


@register
class CreditReleased(ClientEvent):
    reservation_id: str
    saga_id: str
    loan_id: str
    amount: Amount
