"""Errors shared by dockguard's modules."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A configuration value that dockguard refuses to guess about.

    ``source`` is where the value came from: a file path, or ``"environment"``
    for environment variables. ``key`` names the setting and ``reason`` says,
    in a sentence a person can act on, what is wrong and how to fix it.
    """

    source: str
    key: str
    reason: str

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(source, key, reason)
        self.source = source
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.reason}"
