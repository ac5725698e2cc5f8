"""Pure domain model of the notifications service: no framework, driver or broker imports."""
