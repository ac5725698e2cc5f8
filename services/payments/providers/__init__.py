"""Adapters to the mobile-money providers (GSMA Mobile Money API v1.2 conventions)."""
