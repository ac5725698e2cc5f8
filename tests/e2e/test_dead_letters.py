"""Scenario 6: a poison message, the operator's fix, and a replay that takes effect once.

The cause is one an operator can make and undo through the API: a new version
of the ``kyc_verified`` template whose text uses a variable the event does not
carry. Rendering fails for every retry, so the ClientKycVerified event lands in
the notifications service's dead letters while the service keeps serving. The
operator publishes a corrected version and replays the dead letter through
``POST /v1/dead-letters/{id}/replay``: exactly one SMS, and the audit says who.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.e2e.bank import Bank, bearer, eventually
from tests.infra import Infra

pytestmark = pytest.mark.e2e
TEMPLATE = "kyc_verified"


async def current_template(bank: Bank, language: str) -> dict[str, Any]:
    found = await bank.call("GET", "notifications", "/v1/templates", headers=bank.maker,
                            params={"name": TEMPLATE})
    [template] = [t for t in found if t["language"] == language]
    return dict(template)


async def publish(bank: Bank, headers: dict[str, str], language: str, body: str,
                  variables: dict[str, str], template: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = await bank.call(
        "POST", "notifications", f"/v1/templates/{TEMPLATE}/versions", expect=201,
        headers=headers, json={"language": language, "body": body, "variables": variables,
                               "urgent": template["urgent"], "policy": template["policy"]})
    return made


@pytest.fixture
async def good_template(bank: Bank) -> AsyncIterator[dict[str, Any]]:
    """The French template as it is; whatever happens, a version with this text is current
    again afterwards."""
    original = await current_template(bank, "fr")
    yield original
    if (await current_template(bank, "fr"))["body"] != original["body"]:
        await publish(bank, bank.maker, "fr", original["body"], original["variables"], original)


async def test_poison_message_is_replayed_once_after_the_operator_fixes_the_cause(
        bank: Bank, infra: Infra, good_template: dict[str, Any]) -> None:
    templates_author = bearer("operator", sub="operator-nadia")
    replayer_sub = "operator-rachid"
    replayer = bearer("operator", sub=replayer_sub)

    # The operator's mistake: a placeholder no ClientKycVerified event carries.
    broken = await publish(bank, templates_author, "fr",
                           good_template["body"] + " Code: {promo_code}",
                           {**good_template["variables"], "promo_code": "text"}, good_template)
    assert broken["version"] > good_template["version"]

    who = await bank.onboard(language="fr")  # verified: ClientKycVerified is published

    async def dead_letter() -> dict[str, Any] | None:
        letters = await bank.call("GET", "notifications", "/v1/dead-letters",
                                  headers=replayer, params={"limit": 500})
        mine = [d for d in letters if d["key"] == who.client_id
                and d["message_type"] == "ClientKycVerified"]
        return mine[0] if mine else None

    letter = await eventually(dead_letter, what="the poison event in the dead letters")
    assert letter["reason"] == "handler_failed" and "promo_code" in letter["error"]
    assert await bank.messages(client_id=who.client_id) == []

    # The service keeps serving: its health, its API, and the next borrower's events.
    await bank.call("GET", "notifications", "/health/ready", headers={})
    ar_client = await bank.onboard(language="ar")  # the Arabic template is unharmed
    await eventually(lambda: bank.messages(client_id=ar_client.client_id),
                     what="the next client's SMS")

    # Replaying before the cause is fixed changes nothing and stays pending.
    early = await bank.call("POST", "notifications",
                            f"/v1/dead-letters/{letter['id']}/replay", headers=replayer)
    assert early["outcome"] == "dead_letter"
    assert await bank.messages(client_id=who.client_id) == []

    fixed = await publish(bank, templates_author, "fr", good_template["body"],
                          good_template["variables"], good_template)
    assert fixed["version"] > broken["version"]
    replayed = await bank.call("POST", "notifications",
                               f"/v1/dead-letters/{letter['id']}/replay", headers=replayer)
    assert replayed["outcome"] == "applied", replayed
    # A second replay (a double click) is recognised as a duplicate: still one SMS.
    again = await bank.call("POST", "notifications",
                            f"/v1/dead-letters/{letter['id']}/replay", headers=replayer)
    assert again["outcome"] == "duplicate"

    preview = await bank.call("POST", "notifications", f"/v1/templates/{TEMPLATE}/preview",
                              headers=bank.maker, json={"language": "fr", "variables": {}})
    sms = await bank.messages(client_id=who.client_id)
    assert [(m["template"], m["text"]) for m in sms] == [(TEMPLATE, preview["text"])]
    pending = await bank.call("GET", "notifications", "/v1/dead-letters", headers=replayer,
                              params={"limit": 500})
    assert letter["id"] not in [d["id"] for d in pending]

    conn = await asyncpg.connect(infra.admin_url)
    try:
        audit = await conn.fetch(
            "SELECT replayed_by, outcome FROM notifications.dead_letter_replays"
            " WHERE dead_letter_id = $1 ORDER BY id", letter["id"])
    finally:
        await conn.close()
    assert [(r["replayed_by"], r["outcome"]) for r in audit] == [
        (replayer_sub, "dead_letter"), (replayer_sub, "applied"), (replayer_sub, "duplicate")]
