"""A template edited after it was first used: the next message is written with the edit.

The service keeps the templates in memory; an edit committed by an operator (through
this service) or by anyone else (another replica, a migration: here a row written
straight into the table) is what the next message uses, in both languages, and the
message records the version it was written with.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.notifications.conftest import Rig
from tests.integration.notifications.events import repayment

pytestmark = pytest.mark.integration


async def _send(rig: Rig, name: str, client_id: str) -> dict[str, Any]:
    resp = await rig.api.post("/v1/messages", headers=rig.operator, json={
        "template": name, "client_id": client_id, "variables": {"amount": "100.00"}})
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def test_a_template_edited_after_first_use_is_what_the_next_message_uses(
        rig: Rig) -> None:
    name = f"edited_{uuid.uuid4().hex[:6]}"
    client_id, _ = await rig.register()
    body = {"language": "fr", "body": "Noria: premier texte, {amount}.",
            "variables": {"amount": "money"}}
    assert (await rig.api.post(f"/v1/templates/{name}/versions", json=body,
                               headers=rig.operator)).status_code == 201
    first = await _send(rig, name, client_id)
    assert (first["text"], first["template_version"]) == (
        "Noria: premier texte, 100,00 MAD.", 1)

    edited = await rig.api.post(f"/v1/templates/{name}/versions", headers=rig.operator,
                                json={**body, "body": "Noria: texte corrige, {amount}."})
    assert edited.status_code == 201, edited.text
    second = await _send(rig, name, client_id)
    assert (second["text"], second["template_version"]) == (
        "Noria: texte corrige, 100,00 MAD.", 2)

    # an edit this process did not make (another replica's, a migration's)
    async with rig.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO templates (name, language, version, body, variables, created_by)"
            " VALUES ($1, 'fr', 3, 'Noria: troisieme texte, {amount}.', $2, 'elsewhere')",
            name, {"amount": "money"})
    third = await _send(rig, name, client_id)
    assert (third["text"], third["template_version"]) == (
        "Noria: troisieme texte, 100,00 MAD.", 3)


async def test_an_event_after_an_edit_of_its_template_is_written_with_the_edit(
        rig: Rig) -> None:
    """The trigger path (an event consumed), for a template of its own language: an
    Arabic client, and an Arabic version added after a first repayment SMS."""
    client_id, _ = await rig.register(language="ar")
    await rig.publish(repayment(client_id), key=client_id)
    first = await rig.wait_message({"queued", "submitted", "delivered"}, client_id=client_id)
    assert first["template"] == "repayment_received" and first["language"] == "ar"
    current = await rig.api.get("/v1/templates", headers=rig.operator,
                                params={"name": "repayment_received"})
    arabic = next(t for t in current.json() if t["language"] == "ar")
    assert first["template_version"] == arabic["version"]
    # the same body, marked so the edit shows: the next message must carry the mark
    marked = "\u2713 " + arabic["body"]
    async with rig.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO templates (name, language, version, body, variables, urgent, policy,"
            " created_by) SELECT name, language, version + 1, $1, variables, urgent, policy,"
            " 'test' FROM templates WHERE name = 'repayment_received' AND language = 'ar'"
            " AND version = $2", marked, arabic["version"])
    try:
        await rig.publish(repayment(client_id), key=client_id)

        async def second_written() -> bool:
            return len(await rig.messages(client_id=client_id)) == 2

        await rig.until(second_written, "the second repayment's message")
        second = (await rig.messages(client_id=client_id))[0]
        assert second["template_version"] == arabic["version"] + 1
        assert second["text"].startswith("\u2713 ")
    finally:  # the other tests of the package use the shipped version
        async with rig.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM templates WHERE name = 'repayment_received' AND language = 'ar'"
                " AND version = $1", arabic["version"] + 1)
