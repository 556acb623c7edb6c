"""Errors of the monitor package, grouped by what the caller does next; the CLI shows each in one line, exit 2."""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error raised by ``monitor``."""


class UsageError(MonitorError):
    """A flag or file given on the command line is wrong: fix the command."""


class ConfigError(MonitorError):
    """The configuration cannot be used: finmon refuses to start and says why."""


class BrokerError(MonitorError):
    """The demo's embedded broker could not be found or started."""


class FeedbackError(MonitorError, ValueError):
    """A submitted correction cannot be used (the page shows it); the message says which field and why."""
