"""The HTTP API: thin routers over the handlers."""
