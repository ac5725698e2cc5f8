"""Contracts published by the clients service."""

from __future__ import annotations
