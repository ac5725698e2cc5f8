"""The HTTP API of the loans service (thin routers)."""
