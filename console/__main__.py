"""``python -m console [serve]``: serve the operations console (default port 8100)."""

from __future__ import annotations

import sys

import uvicorn

from console.app import create_app
from console.settings import ConsoleSettings
from shared.app import server_options
from shared.telemetry import setup_logging


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "serve"
    if command == "migrate":
        return  # the console has no database
    if command != "serve":
        raise SystemExit(f"unknown command {command!r}: use serve")
    settings = ConsoleSettings()
    setup_logging("console", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                **server_options())


if __name__ == "__main__":
    main(sys.argv[1:])
