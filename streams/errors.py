"""Errors of the streaming side that stop a command before it consumes: the CLI shows them in one line."""


class StreamError(Exception):
    """The cluster cannot be used as configured (unreachable, or it refused a request finmon needs)."""
