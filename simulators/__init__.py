"""Simulators of the outside world Noria talks to (development and tests only)."""
