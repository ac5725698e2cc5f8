"""The HTTP API: thin routers over the handlers and the repository's reads."""
