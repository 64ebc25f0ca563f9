"""How the host reads a bind source: the one place dockguard looks at the host's files.

The daemon resolves a bind source on the host when it starts the container:
it follows every symlink, and creates the directories that are missing
(following links on the way). A caller who can write into a bind root can
plant C{esc -> /} there and bind C{root/esc} (or C{root/esc/new}), so the
name alone says nothing. L{resolve} reads the path as the daemon will:
each existing component is looked at with C{lstat}, links are followed
(absolute and relative, C{..} included), and the part that does not exist
yet is appended as it is, since the daemon creates it under what exists.

What cannot be read is refused by the caller (L{HostPathUnverifiable}):
a path dockguard may not read, a link loop, a component that is not a
directory. dockguard must see the host's bind roots at the same paths (when it
runs in a container, mount them there read-only).

A link planted after this check and before the daemon reads the path is not
seen: see docs/guards.md for why callers cannot plant links unless a group
has C{bind_write}.
"""

from __future__ import annotations

import errno
import os
import stat

from dockguard.guards import HostPathUnverifiable

__all__ = ["resolve"]

_MAX_LINKS = 40  # as Linux's path walk


def resolve(path: str) -> str:
    """The absolute path the host reads C{path} (absolute, cleaned) as."""
    pending = [part for part in path.split("/") if part][::-1]
    real: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if real:
                real.pop()
            continue
        candidate = "/" + "/".join([*real, part])
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            # Missing from here on: the daemon creates it under what exists.
            rest = [p for p in reversed(pending)]
            if any(p in (".", "..") for p in rest):
                raise HostPathUnverifiable("does not exist yet and would be created through a '..' in a link")
            return "/" + "/".join([*real, part, *rest])
        except OSError as error:
            raise HostPathUnverifiable(
                f"dockguard cannot read at {candidate} ({os.strerror(error.errno or errno.EIO)})"
            )
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise HostPathUnverifiable(f"goes through more than {_MAX_LINKS} symbolic links (a loop?)")
            try:
                target = os.readlink(candidate)
            except OSError as error:
                raise HostPathUnverifiable(f"has a link dockguard cannot read at {candidate} ({error.strerror})")
            if target.startswith("/"):
                real = []
            pending.extend(reversed([p for p in target.split("/") if p]))
            continue
        if pending and not stat.S_ISDIR(info.st_mode):
            raise HostPathUnverifiable(f"goes through {candidate}, which is not a directory")
        real.append(part)
    return "/" + "/".join(real)
