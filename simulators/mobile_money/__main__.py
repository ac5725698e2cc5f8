"""``python -m simulators.mobile_money [serve]``: the simulator on port 8190.

Environment: ``NORIA_SIM_HTTP_HOST`` (127.0.0.1), ``NORIA_SIM_HTTP_PORT`` (8190),
``NORIA_SIM_PROVIDER`` (sim), ``NORIA_SIM_CALLBACK_SECRET`` (the development
secret payments also defaults to), ``NORIA_SIM_COLLECTION_CALLBACK_URL``
(payments' callback URL for this provider).
"""

from __future__ import annotations

import os
import sys

import uvicorn

from simulators.mobile_money.app import create_app
from simulators.mobile_money.state import World

DEV_CALLBACK_SECRET = "whsec_bm9yaWEtZGV2LW1vYmlsZS1tb25leS1jYWxsYmFjay1zZWNyZXQ="


def world_from_env() -> World:
    provider = os.environ.get("NORIA_SIM_PROVIDER", "sim")
    return World(
        provider=provider,
        callback_secret=os.environ.get("NORIA_SIM_CALLBACK_SECRET", DEV_CALLBACK_SECRET),
        collection_callback_url=os.environ.get(
            "NORIA_SIM_COLLECTION_CALLBACK_URL",
            f"http://127.0.0.1:8103/v1/mobile-money/{provider}/callbacks"),
    )


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "serve"
    if command == "migrate":  # nothing to migrate: the simulator keeps its state in memory
        return
    if command != "serve":
        raise SystemExit(f"unknown command {command!r}: use serve")
    uvicorn.run(create_app(world_from_env()),
                host=os.environ.get("NORIA_SIM_HTTP_HOST", "127.0.0.1"),
                port=int(os.environ.get("NORIA_SIM_HTTP_PORT", "8190")), access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
