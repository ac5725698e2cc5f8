"""Application layer: one async function per command, event or request."""
