"""Pure domain model of the clients service: no framework, driver or broker imports."""
