"""What a scoped or redacted caller sees: the daemon's answers, narrowed.

* Lists (C{GET /containers/json}, C{/volumes}, C{/networks}) keep the
  resources a scope holds (L{filter_list}); the caller's own
  C{filters} were applied by the daemon already.
* The event stream (C{GET /events}) keeps the events of resources in scope
  (L{EventFilter}); the stream stays open.
* Inspects and lists hide what the groups redact (L{redact_inspect}).

A body that cannot be read as the daemon's JSON is not passed on: an answer
the caller should not see in full is never guessed at.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dockguard.scope import Resource

__all__ = ["EventFilter", "Unreadable", "filter_list", "redact_inspect", "REDACTED"]

#: What a redacted value reads as.
REDACTED = "<redacted by dockguard>"

#: Judges whether a resource is in the caller's scope.
InScope = Callable[[Resource], bool]


class Unreadable(ValueError):
    """The daemon's answer is not the JSON it documents."""


def _labels(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _container_name(names: Any) -> str:
    """A listed container's own name (not a link alias such as C{/web/db})."""
    if isinstance(names, list):
        for name in names:
            if isinstance(name, str) and name.count("/") == 1:
                return name[1:]
    return ""


def listed_resource(kind: str, item: Any) -> Resource | None:
    """The L{Resource} one list entry describes, or C{None}."""
    if not isinstance(item, dict):
        return None
    ident: Any
    name: Any
    if kind == "container":
        ident = item.get("Id")
        name = _container_name(item.get("Names"))
    elif kind == "volume":
        ident = name = item.get("Name")
    else:
        ident, name = item.get("Id"), item.get("Name")
    if not isinstance(ident, str) or not isinstance(name, str):
        return None
    return Resource(kind, ident, name, _labels(item.get("Labels")))


def _load(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Unreadable("the daemon's answer is not JSON") from None


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8") + b"\n"


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
#: What a list item can have redacted (a list has no environment).
_LIST_REDACTIONS = frozenset({"labels", "mounts"})


def _skip(text: str, at: int) -> int:
    """Where the JSON whitespace at C{at} ends."""
    space = _SPACE.match(text, at)
    assert space is not None  # the pattern matches the empty string
    return space.end()


def _array_items(body: bytes) -> Iterator[tuple[Any, str]]:
    """Each item of a JSON array with its text as sent: kept items go on unchanged, not encoded again."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("the daemon's answer is not UTF-8") from None
    at = _skip(text, 0)
    if text[at : at + 1] != "[":
        raise Unreadable("the daemon's list is not an array")
    at = _skip(text, at + 1)
    if text[at : at + 1] == "]":
        at += 1
    else:
        while True:
            try:
                value, end = _DECODER.raw_decode(text, at)
            except ValueError:
                raise Unreadable("the daemon's answer is not JSON") from None
            yield value, text[at:end]
            at = _skip(text, end)
            sep = text[at : at + 1]
            at = _skip(text, at + 1)
            if sep == "]":
                break
            if sep != ",":
                raise Unreadable("the daemon's answer is not JSON")
    if _skip(text, at) != len(text):
        raise Unreadable("the daemon's answer is not JSON")


def filter_list(
    kind: str,
    body: bytes,
    in_scope: InScope | None,
    redact: frozenset[str],
    redaction_for: Callable[[Resource], frozenset[str]] | None = None,
) -> bytes:
    """A list of C{kind} resources with only those C{in_scope} (C{None}: all), redacted.

    C{redaction_for}, when given, says what to hide of each resource kept
    (the groups whose scope holds it decide); else C{redact} holds for all.
    An item kept whole is passed on as the daemon wrote it.
    """
    if kind == "volume":
        data = _load(body)
        if not isinstance(data, dict):
            raise Unreadable("the daemon's volume list is not an object")
        volumes = data.get("Volumes") or []
        if not isinstance(volumes, list):
            raise Unreadable("the daemon's volume list is not an array")
        items: Iterable[tuple[Any, str | None]] = ((item, None) for item in volumes)
    else:
        items = _array_items(body)
    kept: list[Any] = []
    for item, text in items:
        hidden = redact
        if in_scope is not None:
            resource = listed_resource(kind, item)
            if resource is None or not in_scope(resource):
                continue
            if redaction_for is not None:
                hidden = redaction_for(resource)
        if text is not None and not hidden & _LIST_REDACTIONS:
            kept.append(text)
        else:
            redacted = _redact_item(item, hidden)
            kept.append(redacted if text is None else json.dumps(redacted, separators=(",", ":")))
    if kind == "volume":
        data["Volumes"] = kept
        return _dump(data)
    return ("[" + ",".join(kept) + "]\n").encode("utf-8")


def _redact_item(item: Any, redact: frozenset[str]) -> Any:
    if not redact or not isinstance(item, dict):
        return item
    if "labels" in redact and isinstance(item.get("Labels"), dict):
        item["Labels"] = {key: REDACTED for key in item["Labels"]}
    if "mounts" in redact:
        for mount in item.get("Mounts") or ():
            if isinstance(mount, dict) and "Source" in mount:
                mount["Source"] = REDACTED
    return item


def _redact_env(config: Any) -> None:
    if isinstance(config, dict) and isinstance(config.get("Env"), list):
        config["Env"] = [
            f"{entry.partition('=')[0]}={REDACTED}" if isinstance(entry, str) else entry for entry in config["Env"]
        ]


def redact_inspect(body: bytes, redact: frozenset[str]) -> bytes:
    """A container's or an image's inspect with what C{redact} names hidden.

    C{env}: every C{Config.Env} (and an image's C{ContainerConfig.Env})
    value, keeping the names; C{mounts}: mount sources and C{HostConfig.Binds};
    C{labels}: label values, keeping the keys.
    """
    data = _load(body)
    if not isinstance(data, dict):
        raise Unreadable("the daemon's inspect is not an object")
    if "env" in redact:
        _redact_env(data.get("Config"))
        _redact_env(data.get("ContainerConfig"))
    if "mounts" in redact:
        _redact_item(data, frozenset({"mounts"}))
        host = data.get("HostConfig")
        if isinstance(host, dict) and isinstance(host.get("Binds"), list):
            host["Binds"] = [REDACTED for _ in host["Binds"]]
        if isinstance(host, dict):
            _redact_item(host, frozenset({"mounts"}))  # HostConfig.Mounts: the --mount specs
    if "labels" in redact:
        for config in (data.get("Config"), data.get("ContainerConfig")):
            if isinstance(config, dict) and isinstance(config.get("Labels"), dict):
                config["Labels"] = {key: REDACTED for key in config["Labels"]}
    return _dump(data)


#: Event attributes the daemon sets itself: the rest of a container
#: event's attributes are the container's labels.
_EVENT_OWN = frozenset({"name", "image", "exitCode", "signal", "execID", "execDuration", "oldName", "container"})


class EventFilter:
    """
    The daemon's event stream (one JSON object per line), keeping the events
    of the resources in scope.

    A container event (exec events are container events) is judged by its
    actor: its ID, and the name and labels the daemon puts in its
    attributes.  A network or volume event that names a container
    (C{connect}, C{mount}) is delivered when that container was seen in
    scope on this stream; other network and volume events, and anything
    unreadable, are dropped.  Events of images, the daemon, plugins and the
    swarm are not about scoped resources and pass.
    """

    def __init__(self, in_scope: InScope, max_line: int = 1 << 20) -> None:
        self.in_scope = in_scope
        self.max_line = max_line
        self._partial = b""
        #: Containers judged on this stream: ID -> in scope.
        self._seen: dict[str, bool] = {}

    def feed(self, data: bytes) -> bytes:
        """The complete events of C{data} that pass (a line cut short waits for its end)."""
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self.max_line or any(len(line) > self.max_line for line in lines):
            raise Unreadable(f"an event is longer than {self.max_line} bytes")
        return b"".join(line + b"\n" for line in lines if line.strip() and self._passes(line))

    def _passes(self, line: bytes) -> bool:
        try:
            event = json.loads(line)
        except ValueError:
            return False
        if not isinstance(event, dict):
            return False
        kind = event.get("Type")
        actor = event.get("Actor")
        if not isinstance(kind, str) or not isinstance(actor, dict):
            return False  # the API's old shape (before 1.22) does not name its actor's kind
        ident = actor.get("ID")
        attributes = _labels(actor.get("Attributes"))
        if kind == "container":
            if not isinstance(ident, str):
                return False
            labels = {key: value for key, value in attributes.items() if key not in _EVENT_OWN}
            verdict = self.in_scope(Resource("container", ident, attributes.get("name", ""), labels))
            if len(self._seen) > 65536:
                self._seen.clear()
            self._seen[ident] = verdict
            return verdict
        if kind in ("network", "volume"):
            container = attributes.get("container")
            return container is not None and self._seen.get(container, False)
        return True
