"""The application layer: one async function per command or event, over a unit of work."""
