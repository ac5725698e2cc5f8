"""The simulator's HTTP side: control API, what each phone received, the aggregator API."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from simulators.smsc.server import RECEIPT_STATES, Behaviour, Smsc


class BehaviourPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    throttle_next: int | None = None
    queue_full_next: int | None = None
    fail_next: int | None = None
    reject_pattern: str | None = None
    receipt_delay_s: float | None = None
    receipt_status: str | None = None
    slow_smpp_s: float | None = None
    slow_http_s: float | None = None
    redeliver_delay_s: float | None = None


class MoIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: str
    text: str
    to: str = "Noria"


class AggregatorIn(BaseModel):
    to: str
    text: str
    encoding: str | None = None
    reference: str | None = None


def create_app(smsc: Smsc) -> FastAPI:
    app = FastAPI(title="Noria SMSC simulator",
                  description="An SMPP 3.4 SMSC and an HTTP SMS aggregator, for tests.")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        ok = smsc.server is not None and smsc.server.is_serving()
        return JSONResponse({"ready": ok, "checks": {"smpp": {"ok": ok}}},
                            status_code=200 if ok else 503)

    @app.get("/control")
    async def get_control() -> dict[str, Any]:
        return dataclasses.asdict(smsc.behaviour)

    @app.post("/control")
    async def set_control(patch: BehaviourPatch) -> dict[str, Any]:
        changes = patch.model_dump(exclude_unset=True)
        if changes.get("receipt_status") and changes["receipt_status"] not in RECEIPT_STATES:
            raise HTTPException(422, f"receipt_status must be one of {sorted(RECEIPT_STATES)}")
        for key, value in changes.items():
            setattr(smsc.behaviour, key, value)
        return dataclasses.asdict(smsc.behaviour)

    @app.post("/control/reset")
    async def reset() -> dict[str, Any]:
        smsc.behaviour = Behaviour()
        return dataclasses.asdict(smsc.behaviour)

    @app.get("/messages")
    async def messages(to: str | None = None, interface: str | None = None
                       ) -> list[dict[str, Any]]:
        return smsc.messages(to, interface)

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        """Counters: submissions (repeats included), repeats, deliver_sm sent, refused by
        the ESME and delivered again, enquire_link received."""
        return dict(smsc.stats)

    @app.get("/sessions")
    async def sessions() -> list[dict[str, Any]]:
        return [{"system_id": s.system_id, "bound": s.bound} for s in smsc.sessions]

    @app.post("/mo")
    async def mobile_originated(body: MoIn) -> dict[str, Any]:
        delivered = await smsc.inject_mo(body.sender, body.text, body.to)
        if not delivered:
            raise HTTPException(409, "no ESME is bound to receive the reply")
        return {"delivered_to_sessions": delivered}

    @app.post("/aggregator/v1/messages", status_code=202)
    async def aggregator_submit(body: AggregatorIn) -> JSONResponse:
        refusal, message_id = await smsc.http_submit(body.to, body.text,
                                                     reference=body.reference)
        if refusal == "throttled":
            return JSONResponse({"error": "throttled"}, status_code=429,
                                headers={"Retry-After": "1"})
        if refusal == "permanent":
            return JSONResponse({"error": "invalid destination", "permanent": True},
                                status_code=400)
        if refusal:
            return JSONResponse({"error": "temporary failure"}, status_code=503)
        return JSONResponse({"id": message_id}, status_code=202)

    @app.get("/aggregator/v1/messages/{message_id}")
    async def aggregator_status(message_id: str) -> dict[str, str]:
        record = smsc.by_part.get(message_id)
        if record is None:
            raise HTTPException(404, "unknown message")
        return {"id": message_id, "status": record.status}

    return app
