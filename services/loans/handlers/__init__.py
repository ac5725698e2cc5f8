"""Application layer: one async function per command or event, taking a unit of work."""
