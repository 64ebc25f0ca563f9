"""
The one syntax of names dockguard accepts for identities (certificate CNs,
fixed listener identities) and groups: a name a person can read in a log and
write in a config file.  Anything else (spaces, control characters, quotes,
non-ASCII look-alikes, a trailing newline) makes two names hard to tell apart.
"""

import re
from typing import TypeGuard

NAME_SYNTAX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")

#: The rule in words, for error messages.
NAME_RULE = "letters, digits and . _ @ + -, starting with a letter or digit, at most 128 characters"


def is_plain_name(value: object) -> TypeGuard[str]:
    """Whether C{value} is a string of exactly the accepted syntax (for mypy:
    a C{True} answer means C{value} is a C{str})."""
    return isinstance(value, str) and NAME_SYNTAX.fullmatch(value) is not None
