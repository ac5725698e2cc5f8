"""The operations console: a server-rendered web UI over the four services' APIs."""
