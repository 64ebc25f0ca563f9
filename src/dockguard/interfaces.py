"""
Interfaces for type annotations only: nothing declares or checks them at run
time, so the tests' fakes need not provide them.
"""

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
