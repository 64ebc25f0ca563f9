"""Reading a body as the daemon's Go C{encoding/json} does.

Object keys match case-insensitively, with Go's folding (L{GoObject});
two keys that fold to one name are refused, since Go keeps the last and the
body has two readings. The body must be strict UTF-8 JSON (L{decode}).
C{null} is the zero value, and a field of the wrong JSON type is refused
rather than guessed at (the C{as_*} readers). See "How bodies are read" in
docs/guards.md.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from dockguard.guards.verdict import Refusal, show

__all__ = [
    "GoObject",
    "as_bool",
    "as_list",
    "as_object",
    "as_str",
    "as_str_list",
    "as_str_map",
    "decode",
    "go_fold",
    "json_type",
]


# The only non-ASCII runes Go's key folding (ToUpper(ToLower(r))) turns into
# ASCII letters.
_GO_FOLD_TO_ASCII = {"\u0130": "I", "\u0131": "I", "\u017f": "S", "\u212a": "K"}


def go_fold(key: str) -> str:
    """C{key} folded as Go's C{encoding/json} matches a field name: two keys that fold alike are one field."""
    if key.isascii():
        return key.upper()
    out = []
    for char in key:
        if char.isascii():
            out.append(char.upper())
        elif char in _GO_FOLD_TO_ASCII:
            out.append(_GO_FOLD_TO_ASCII[char])
        else:
            lower = char.lower()
            folded = lower.upper() if len(lower) == 1 else char
            out.append(folded if len(folded) == 1 else lower)
    return "".join(out)


class GoObject:
    """A JSON object as Go sees it: keys looked up case-insensitively (Go folding)."""

    __slots__ = ("_index", "pairs")

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        index: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        for key, value in pairs:
            folded = go_fold(key)
            if folded in spelled:
                raise Refusal(
                    key,
                    "",
                    f"the body has the keys {show(spelled[folded])} and {show(key)} in one "
                    "object; the daemon matches keys case-insensitively and keeps the last, so the "
                    "body has two readings: send each key once",
                )
            spelled[folded] = key
            index[folded] = value
        self.pairs = pairs
        self._index = index

    def get(self, name: str) -> Any:
        return self._index.get(go_fold(name))

    def __len__(self) -> int:
        return len(self.pairs)


def _no_constant(name: str) -> NoReturn:
    raise Refusal("", "", f"the body contains {name}, which is not JSON (the daemon rejects it): send valid JSON")


def decode(body: bytes) -> Any:
    """Strict UTF-8 JSON, objects as L{GoObject}; a refusal for anything else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Refusal("", "", f"the body is not valid UTF-8 (byte {error.start}); send UTF-8 JSON") from None
    try:
        return json.loads(text, object_pairs_hook=GoObject, parse_constant=_no_constant)
    except ValueError as error:
        raise Refusal("", "", f"the body is not valid JSON ({error}); send valid JSON") from None
    except RecursionError:
        raise Refusal("", "", "the body nests too deeply to judge; send a flatter document") from None


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_type(field: str, expected: str, value: Any) -> NoReturn:
    raise Refusal(
        field,
        "",
        f"{field} must be {expected}, not a JSON {json_type(value)}: the daemon would reject it, "
        "and dockguard does not guess; send the documented type",
    )


# The readers of one field: the zero value for null (or absent), the value
# for the right JSON type, a refusal for any other.


def as_object(value: Any, field: str) -> GoObject | None:
    if value is None or isinstance(value, GoObject):
        return value
    _wrong_type(field, "an object", value)


def as_bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    _wrong_type(field, "true or false", value)


def as_str(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    _wrong_type(field, "a string", value)


def as_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    _wrong_type(field, "an array", value)


def as_str_list(value: Any, field: str, *, strslice: bool = False) -> list[str]:
    """A list of strings; with C{strslice}, a single string too (a one-element list)."""
    if strslice and isinstance(value, str):
        return [value]  # moby's StrSlice accepts one string
    items = as_list(value, field)
    return [as_str(item, f"{field}[{index}]") for index, item in enumerate(items)]


def as_str_map(value: Any, field: str) -> GoObject:
    """An object whose values are all strings (an empty one for null)."""
    obj = as_object(value, field)
    if obj is None:
        return GoObject([])
    for key, item in obj.pairs:
        as_str(item, f"{field}.{key}")
    return obj
