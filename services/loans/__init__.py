"""The loans service."""
