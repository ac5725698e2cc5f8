"""SQL over the unit of work's connection; returns domain objects."""
