"""Query strings read as the daemon reads them.

The daemon's handlers read parameters with Go's C{r.Form} (C{url.ParseQuery}
on the raw query): pairs split on C{&}, keys and values percent-decoded with
C{+} read as a space, keys compared case-sensitively, and C{Get} returns the
*first* value of a key. L{Query} gives exactly that reading, so a check
made on a parameter is made on the value the daemon uses.

Two readings are refused (L{QueryRefused}) rather than guessed at:

* a C{;}: Go before 1.17 split pairs on it too, later versions reject the
  pair, so the same target means different things to different daemons;
* a malformed percent-escape: Go rejects the pair, other readers keep it.

L{bool_value} is moby's C{httputils.BoolValue}: anything but C{""},
C{0}, C{no}, C{false} and C{none} (any case, spaces trimmed) is true.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = ["Query", "QueryRefused", "bool_value", "parse_query"]

_HEX = frozenset("0123456789abcdefABCDEF")


class QueryRefused(ValueError):
    """A query string with two readings, with a reason to act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class Query:
    """A parsed query: every key with all its values, in the order sent."""

    values: Mapping[str, tuple[str, ...]]

    def get(self, key: str) -> str:
        """The first value of C{key} (Go's C{Form.Get}); C{""} when absent."""
        found = self.values.get(key)
        return found[0] if found else ""

    def all(self, key: str) -> tuple[str, ...]:
        """Every value of C{key}, in order; C{()} when absent."""
        return self.values.get(key, ())

    def has(self, key: str) -> bool:
        return key in self.values

    def true(self, key: str) -> bool:
        """C{httputils.BoolValue(r, key)}: the first value read as moby reads a flag."""
        return bool_value(self.get(key))


_EMPTY = Query(values=MappingProxyType({}))


def bool_value(value: str) -> bool:
    """moby's C{httputils.BoolValue} for one value."""
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def _unescape(text: str) -> str:
    if "%" not in text and "+" not in text:
        return text
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            escape = text[index + 1 : index + 3]
            if len(escape) < 2 or escape[0] not in _HEX or escape[1] not in _HEX:
                raise QueryRefused(
                    f"the query has a malformed percent-escape ({text[index : index + 3]!r}); "
                    "the daemon rejects it: '%' must be followed by two hexadecimal digits"
                )
            out.append(int(escape, 16))
            index += 3
            continue
        out.extend(b" " if char == "+" else char.encode("ascii"))
        index += 1
    # Go keeps invalid UTF-8 as it is; replacement characters compare as "not equal" safely.
    return out.decode("utf-8", "surrogateescape")


def parse_query(raw: str) -> Query:
    """Parse the raw query of a L{CanonicalPath<dockguard.paths.CanonicalPath>} as Go does."""
    if not raw:
        return _EMPTY
    if ";" in raw:
        raise QueryRefused(
            "the query contains ';', which older daemons read as a separator and newer ones "
            "reject: it has two readings; percent-encode it as %3B"
        )
    values: dict[str, list[str]] = {}
    for pair in raw.split("&"):
        if pair == "":
            continue
        key, _, value = pair.partition("=")
        values.setdefault(_unescape(key), []).append(_unescape(value))
    return Query(values=MappingProxyType({key: tuple(found) for key, found in values.items()}))
