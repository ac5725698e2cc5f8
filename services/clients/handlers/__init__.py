"""Application layer: one async function per command/event, taking a unit of work."""
