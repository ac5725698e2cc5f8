"""A local SMSC: a real SMPP 3.4 server plus an HTTP aggregator API and a control API.

``python -m simulators.smsc`` listens for SMPP on 2775 and HTTP on 8191. Tests
and the end-to-end harness steer it through ``POST /control`` (throttle, reject,
slow down, change receipts), read what reached each phone with
``GET /messages?to=…`` and inject replies with ``POST /mo``.
"""
