"""
Coverage-guided fuzzing of the relay with atheris (libFuzzer).  Opt-in, run
by hand; pytest does not collect it (atheris is not a test dependency).

    python -m pip install atheris        # wheels for CPython 3.11 on Linux x86-64
    PYTHONPATH=src:tests python tests/fuzz_atheris.py -max_total_time=300 [CORPUS_DIR]

Each input is split into: one byte choosing the policy (environment
variables or a group with escalation guards), one byte choosing whether
the client half-closes at the end, one byte giving the number of cut
points, that many bytes giving the cuts, and the rest as the bytes the
client sends.  The stream is fed to a L{ClientProtocol} whole and cut at
those points, with the same fake daemon as C{tests/test_fuzz.py}; any of
these is a crash (libFuzzer writes the input to C{crash-*}):

  - an exception escaping the relay, or a log event carrying a failure;
  - a traceback in what the client receives;
  - a request reaching the daemon that the policy refuses;
  - a different outcome (client answers, daemon requests, closed or not)
    for the whole and the cut stream (but the one known difference,
    C{test_fuzz._known_close_race}, a bug tracked by an xfail test).

Seed the corpus with a few requests to get going faster, e.g.
C{printf 'A\\x00\\x01\\x10GET /_ping HTTP/1.1\\r\\nHost: d\\r\\n\\r\\n' > corpus/ping}.
"""

from __future__ import annotations

import gc
import sys

import atheris
from twisted.logger import capturedLogs

with atheris.instrument_imports(include=["dockguard", "h11"]):
    import h11  # noqa: F401
    from test_fuzz import _check, _known_close_race, run

    import dockguard.relay  # noqa: F401


def test_one_input(data: bytes) -> None:
    if len(data) < 3:
        return
    which = "groups" if data[0] & 1 else "env"
    eof = bool(data[1] & 1)
    count = data[2] % 16
    cut_bytes, stream = data[3 : 3 + count], data[3 + count :]
    cuts = [b * len(stream) // 256 for b in cut_bytes]
    with capturedLogs() as events:
        whole, world, raw = run(which, stream, [], eof)
        gc.collect()  # a failure left in a Deferred is logged when it is collected
    _check(whole, world, raw, events)
    with capturedLogs() as events:
        split, world, split_raw = run(which, stream, cuts, eof)
        gc.collect()
    _check(split, world, split_raw, events)
    if split != whole and not _known_close_race(whole, raw, split, split_raw):
        raise AssertionError(f"the outcome depends on the split at {cuts}:\n{whole}\n!=\n{split}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
