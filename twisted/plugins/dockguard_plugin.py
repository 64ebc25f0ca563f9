"""
The twistd plugin: C{twistd dockguard}.  Only builds the service maker; the
code lives in L{dockguard.tap}, imported when the command runs.
"""

from twisted.application.service import ServiceMaker

dockguard = ServiceMaker(
    "dockguard",
    "dockguard.tap",
    "A guard for the Docker Engine API: mutual TLS, per-identity permissions, a streaming relay.",
    "dockguard",
)
