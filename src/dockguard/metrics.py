"""
What dockguard counts, for the admin listener's C{/metrics}.

The relay reports to a L{Metrics}: L{NoMetrics} (the default, when no admin
listener is configured, so the hot path pays one no-op call) or
L{PrometheusMetrics}, backed by the C{prometheus_client} library with a
registry of its own.  Gauges of things that are open (connections, streams,
hijacked sessions) are read from the live connections at scrape time, so no
increment can ever be left without its decrement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

#: Latency buckets (seconds) from the request head to the response head.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics(Protocol):
    def decided(self, identity: str, section: str, decision: str, seconds: float | None) -> None:
        """One request decided (and answered, for relayed ones)."""

    def upstreamError(self, kind: str) -> None:
        """The daemon could not be reached (C{connect}) or hung up (C{closed})."""

    def reloaded(self, ok: bool) -> None:
        """A SIGHUP reload succeeded or failed."""

    def certificateExpiry(self, listener: str, role: str, timestamp: float) -> None:
        """When a listener's certificate (role C{server} or C{client_ca}) expires."""

    def connectionRefused(self, reason: str) -> None:
        """
        A connection was turned away: C{allow-list}, the limit it hit
        (C{max_connections}, C{max_plain_connections}, C{max_tls_handshakes},
        C{max_connections_per_peer}), or C{plain-http} (plain HTTP on a TLS
        listener, answered 400).
        """


class NoMetrics:
    """Counts nothing: the relay's default when no admin listener is configured."""

    def decided(self, identity: str, section: str, decision: str, seconds: float | None) -> None:
        pass

    def upstreamError(self, kind: str) -> None:
        pass

    def reloaded(self, ok: bool) -> None:
        pass

    def certificateExpiry(self, listener: str, role: str, timestamp: float) -> None:
        pass

    def connectionRefused(self, reason: str) -> None:
        pass


class PrometheusMetrics:
    """
    dockguard's metrics in a C{prometheus_client} registry of their own.

    @param connections: called at scrape time; returns the live client
        connections, each with C{streaming} and C{hijacked} booleans.
    """

    def __init__(self, connections: Callable[[], Iterable[object]]) -> None:
        # Imported only when metrics are kept (an admin listener is
        # configured): the idle process does without prometheus_client.
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "dockguard_requests",
            "Requests decided, by identity, API section and decision (allow, deny, refuse, would-deny).",
            ["identity", "section", "decision"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "dockguard_request_duration_seconds",
            "Time from a request's head to its response's head (refusals included).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._upstream = Counter(
            "dockguard_upstream_errors",
            "Requests the daemon could not answer: connect (unreachable) or closed (hung up).",
            ["kind"],
            registry=self.registry,
        )
        self._reloads = Counter(
            "dockguard_reloads",
            "SIGHUP reloads, by result (ok, failed).",
            ["result"],
            registry=self.registry,
        )
        self._expiry = Gauge(
            "dockguard_certificate_expiry_timestamp_seconds",
            "When a listener's certificate expires (Unix time); role is server or client_ca.",
            ["listener", "role"],
            registry=self.registry,
        )
        self._turnedAway = Counter(
            "dockguard_refused_connections",
            "Connections turned away before any request: allow-list or connection limits.",
            ["reason"],
            registry=self.registry,
        )
        for kind in ("connect", "closed"):
            self._upstream.labels(kind=kind)
        for result in ("ok", "failed"):
            self._reloads.labels(result=result)

        def count(attribute: str | None) -> Callable[[], int]:
            return lambda: sum(1 for c in connections() if attribute is None or getattr(c, attribute))

        for name, doc, attribute in (
            ("dockguard_open_connections", "Client connections open now.", None),
            ("dockguard_open_streams", "Responses being relayed now (logs -f, events, downloads...).", "streaming"),
            ("dockguard_hijacked_sessions", "Hijacked connections (attach, exec) open now.", "hijacked"),
        ):
            Gauge(name, doc, registry=self.registry).set_function(count(attribute))

    def decided(self, identity: str, section: str, decision: str, seconds: float | None) -> None:
        self._requests.labels(identity=identity, section=section, decision=decision).inc()
        if seconds is not None:
            self._latency.observe(seconds)

    def upstreamError(self, kind: str) -> None:
        self._upstream.labels(kind=kind).inc()

    def reloaded(self, ok: bool) -> None:
        self._reloads.labels(result="ok" if ok else "failed").inc()

    def certificateExpiry(self, listener: str, role: str, timestamp: float) -> None:
        self._expiry.labels(listener=listener, role=role).set(timestamp)

    def connectionRefused(self, reason: str) -> None:
        self._turnedAway.labels(reason=reason).inc()

    def expose(self) -> bytes:
        """The registry in Prometheus' text format."""
        # As in __init__: only when metrics are kept.
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
