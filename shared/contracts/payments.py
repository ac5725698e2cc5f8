"""Contracts published by the payments service."""

from __future__ import annotations
