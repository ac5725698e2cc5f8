"""Pure domain model of the payments service: no framework, driver or broker imports."""
