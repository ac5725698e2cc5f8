"""Contracts published by the loans service."""

from __future__ import annotations
