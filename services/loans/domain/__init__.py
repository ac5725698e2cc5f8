"""Pure domain model of the loans service: no framework, driver or broker imports."""
