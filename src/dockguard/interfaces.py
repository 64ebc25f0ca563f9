"""
Interfaces for type annotations only: nothing declares or checks them at run
time, so the tests' fakes need not provide them.
"""

import typing
from collections.abc import Iterable

from twisted.internet.interfaces import IReactorFromThreads, IReactorTCP, IReactorTime, IReactorUNIX, ITransport


class IReactor(IReactorTCP, IReactorUNIX, IReactorTime, IReactorFromThreads):
    """
    The reactor dockguard's service runs on.  Twisted's reactors provide
    each of these interfaces; this one names them all at once, as mypy has no
    intersection of types (Twisted annotates its global reactor the same way,
    with a make-believe C{twisted.internet._IReactorCommon}, which lacks
    L{IReactorUNIX}).
    """


class IAbortableTransport(ITransport):
    """
    A transport that can also be cut at once.  TCP, Unix and TLS transports
    all can; L{ITransport} does not say so (only L{ITCPTransport} does, and a
    Unix transport is not one).
    """

    def abortConnection() -> None:
        """
        Close the connection at once, dropping whatever is buffered.
        """


class StreamTransport(typing.Protocol):
    """
    What the relay uses of a connection's transport: TCP, Unix and TLS
    transports (and the tests' L{StringTransport}) all have it, though no
    one Twisted interface says so.
    """

    disconnecting: bool

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: Iterable[bytes]) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def loseWriteConnection(self) -> None: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def registerProducer(self, producer: object, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def getPeer(self) -> object: ...


def stream(transport: object) -> StreamTransport:
    """C{transport}, as the relay uses it."""
    return typing.cast(StreamTransport, transport)
