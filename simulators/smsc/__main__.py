"""``python -m simulators.smsc [--host H] [--smpp-port 2775] [--http-port 8191]``.

Ports may also come from NORIA_SMSC_SMPP_PORT and NORIA_SMSC_HTTP_PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from simulators.smsc.runner import running


async def main(host: str, smpp_port: int, http_port: int) -> None:
    async with running(host, smpp_port, http_port) as r:
        logging.getLogger("noria.smsc").info(
            "SMSC simulator: SMPP on %s:%d, HTTP on %s", host, r.smpp_port, r.http_url)
        await asyncio.Event().wait()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--host", default=os.environ.get("NORIA_SMSC_HTTP_HOST", "127.0.0.1"))
    parser.add_argument("--smpp-port", type=int,
                        default=int(os.environ.get("NORIA_SMSC_SMPP_PORT", "2775")))
    parser.add_argument("--http-port", type=int,
                        default=int(os.environ.get("NORIA_SMSC_HTTP_PORT", "8191")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:  # the cheaper event loop where installed (uvicorn's choice for the services)
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(main(args.host, args.smpp_port, args.http_port))
    except KeyboardInterrupt:
        pass


cli()
