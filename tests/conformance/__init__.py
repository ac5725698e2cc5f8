"""Noria's protocol code checked against independent implementations.

SMPP against aiosmpplib, GSM 03.38 against gsm0338 (and aiosmpplib's septet packer),
webhook signatures against the standardwebhooks library. No database or broker.
"""
