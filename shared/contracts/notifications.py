"""Contracts published by the notifications service."""

from __future__ import annotations
