"""The pure model of the clients service (no framework, driver or broker)."""
