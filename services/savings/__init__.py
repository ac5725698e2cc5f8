"""The savings service."""
