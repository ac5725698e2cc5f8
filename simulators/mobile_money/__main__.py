"""``python -m simulators.mobile_money [serve]``: the simulator on port 8190.

Environment: ``NORIA_SIM_HTTP_HOST`` (127.0.0.1), ``NORIA_SIM_HTTP_PORT`` (8190),
``NORIA_SIM_PROVIDER`` (sim), ``NORIA_SIM_CALLBACK_SECRET`` (the development
secret payments also defaults to), ``NORIA_SIM_COLLECTION_CALLBACK_URL``
(payments' callback URL for this provider), ``NORIA_SIM_STATEMENT_TZ`` (UTC: the
zone whose calendar day a statement covers), ``NORIA_SIM_HANG_S`` (3600: how long
an unanswered request is held open).

The provider's default behaviour (``POST /sim/config`` changes it at run time,
globally or per msisdn; ``reset`` comes back to these): ``NORIA_SIM_LATENCY_S``,
``NORIA_SIM_PROCESSING_DELAY_S``, ``NORIA_SIM_FAILURE_RATE``, ``NORIA_SIM_TIMEOUT``,
``NORIA_SIM_LOSE_CALLBACKS``, ``NORIA_SIM_DUPLICATE_CALLBACKS``,
``NORIA_SIM_CALLBACK_ATTEMPTS`` and real providers' bad habits:
``NORIA_SIM_EXECUTE_WITHOUT_ANSWER``, ``NORIA_SIM_ANSWER_DELAY_S``,
``NORIA_SIM_HONOURS_EXPIRY`` (false), ``NORIA_SIM_CALLBACK_BEFORE_ANSWER``,
``NORIA_SIM_DUPLICATE_DELAY_S``, ``NORIA_SIM_STATUS_UNKNOWN_S`` (README.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from simulators.mobile_money.app import create_app
from simulators.mobile_money.state import Behaviour, World

DEV_CALLBACK_SECRET = "whsec_bm9yaWEtZGV2LW1vYmlsZS1tb25leS1jYWxsYmFjay1zZWNyZXQ="


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _flag(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text not in _TRUE | _FALSE:
        raise SystemExit(f"{name}={value!r}: use true or false")
    return text in _TRUE


def behaviour_from_env() -> Behaviour:
    """The default behaviour, from NORIA_SIM_* (each name spelt out, so the
    deployment checks can read them)."""
    raw = {
        "latency_s": os.environ.get("NORIA_SIM_LATENCY_S", "0"),
        "processing_delay_s": os.environ.get("NORIA_SIM_PROCESSING_DELAY_S", "0.2"),
        "failure_rate": os.environ.get("NORIA_SIM_FAILURE_RATE", "0"),
        "timeout": os.environ.get("NORIA_SIM_TIMEOUT", "false"),
        "lose_callbacks": os.environ.get("NORIA_SIM_LOSE_CALLBACKS", "false"),
        "duplicate_callbacks": os.environ.get("NORIA_SIM_DUPLICATE_CALLBACKS", "false"),
        "callback_attempts": os.environ.get("NORIA_SIM_CALLBACK_ATTEMPTS", "8"),
        "execute_without_answer": os.environ.get("NORIA_SIM_EXECUTE_WITHOUT_ANSWER", "false"),
        "answer_delay_s": os.environ.get("NORIA_SIM_ANSWER_DELAY_S", "0"),
        "honours_expiry": os.environ.get("NORIA_SIM_HONOURS_EXPIRY", "false"),
        "callback_before_answer": os.environ.get("NORIA_SIM_CALLBACK_BEFORE_ANSWER", "false"),
        "duplicate_delay_s": os.environ.get("NORIA_SIM_DUPLICATE_DELAY_S", "0"),
        "status_unknown_s": os.environ.get("NORIA_SIM_STATUS_UNKNOWN_S", "0"),
    }
    kinds = {f: type(v) for f, v in Behaviour().__dict__.items()}
    values: dict[str, Any] = {}
    for name, text in raw.items():
        env = f"NORIA_SIM_{name.upper()}"
        kind = kinds[name]
        try:
            values[name] = _flag(env, text) if kind is bool else kind(text)
        except ValueError:
            raise SystemExit(f"{env}={text!r}: not a {kind.__name__}") from None
    return Behaviour().merged(values)


def world_from_env() -> World:
    provider = os.environ.get("NORIA_SIM_PROVIDER", "sim")
    return World(
        provider=provider,
        callback_secret=os.environ.get("NORIA_SIM_CALLBACK_SECRET", DEV_CALLBACK_SECRET),
        collection_callback_url=os.environ.get(
            "NORIA_SIM_COLLECTION_CALLBACK_URL",
            f"http://127.0.0.1:8103/v1/mobile-money/{provider}/callbacks"),
        default=behaviour_from_env(),
        statement_tz=os.environ.get("NORIA_SIM_STATEMENT_TZ", "UTC"),
        hang_s=float(os.environ.get("NORIA_SIM_HANG_S", "3600")),
    )


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "serve"
    if command == "migrate":  # nothing to migrate: the simulator keeps its state in memory
        return
    if command != "serve":
        raise SystemExit(f"unknown command {command!r}: use serve")
    uvicorn.run(create_app(world_from_env()),
                host=os.environ.get("NORIA_SIM_HTTP_HOST", "127.0.0.1"),
                port=int(os.environ.get("NORIA_SIM_HTTP_PORT", "8190")), access_log=False,
                # Idle connections outlive the clients' own idle limit (httpx: 5 s), as a
                # provider's gateway does: at uvicorn's 5 s both sides gave up together and
                # a wallet's payment went out on a closing connection, its answer lost.
                timeout_keep_alive=75)


if __name__ == "__main__":
    main(sys.argv[1:])
