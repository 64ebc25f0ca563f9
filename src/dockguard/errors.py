"""Errors shared by dockguard's modules, and the hint their reasons share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ConfigError", "did_you_mean"]


class ConfigError(Exception):
    """A configuration value that dockguard refuses to guess about.

    C{source} is where the value came from: a file path, or C{"environment"}
    for environment variables. C{key} names the setting and C{reason} says,
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
        if self.source == self.key:  # a command-line option is its own source
            return f"{self.key}: {self.reason}"
        return f"{self.source}: {self.key}: {self.reason}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """C{ (did you mean "x"?)} when C{word} is one of C{choices} in another
    case, or close to one of them (compared without case); else C{""}.

    The one did-you-mean of every message: configuration keys, sections,
    actions, guards, capabilities, namespaces.
    """
    by_lower: dict[str, str] = {}
    for choice in sorted(choices):
        by_lower.setdefault(choice.lower(), choice)
    same = by_lower.get(word.lower())
    if same is not None and same != word:
        return f' (did you mean "{same}"?)'
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f' (did you mean "{by_lower[match[0]]}"?)' if match else ""
