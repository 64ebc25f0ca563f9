"""
L{dockguard.metrics}: what C{/metrics} shows after given events, read back
from the Prometheus text exposition with prometheus_client's own parser.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dockguard.metrics import LATENCY_BUCKETS, Metrics, NoMetrics, PrometheusMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: PrometheusMetrics) -> Samples:
    """Every sample of the exposition, keyed by (name, sorted labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(metrics.expose().decode("utf-8")):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"{key} exposed twice"
            samples[key] = sample.value
    return samples


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def test_a_fresh_registry_shows_zero_errors_reloads_and_open_things_and_no_requests() -> None:
    samples = scrape(PrometheusMetrics(lambda: []))
    assert named(samples, "dockguard_upstream_errors_total") == {
        (("kind", "connect"),): 0,
        (("kind", "closed"),): 0,
    }
    assert named(samples, "dockguard_reloads_total") == {(("result", "ok"),): 0, (("result", "failed"),): 0}
    for gauge in ("dockguard_open_connections", "dockguard_open_streams", "dockguard_hijacked_sessions"):
        assert named(samples, gauge) == {(): 0}
    assert named(samples, "dockguard_requests_total") == {}
    assert named(samples, "dockguard_refused_connections_total") == {}
    assert named(samples, "dockguard_certificate_expiry_timestamp_seconds") == {}
    assert samples[("dockguard_request_duration_seconds_count", ())] == 0


def test_decisions_are_counted_by_identity_section_and_decision() -> None:
    metrics = PrometheusMetrics(lambda: [])
    metrics.decided("ops", "containers", "allow", 0.001)
    metrics.decided("ops", "containers", "allow", 0.002)
    metrics.decided("ops", "images", "deny", 0.0001)
    metrics.decided("ci", "containers", "would-deny", None)
    assert named(scrape(metrics), "dockguard_requests_total") == {
        (("decision", "allow"), ("identity", "ops"), ("section", "containers")): 2,
        (("decision", "deny"), ("identity", "ops"), ("section", "images")): 1,
        (("decision", "would-deny"), ("identity", "ci"), ("section", "containers")): 1,
    }


def test_latency_goes_into_the_documented_buckets_and_none_is_not_observed() -> None:
    metrics = PrometheusMetrics(lambda: [])
    metrics.decided("ops", "containers", "allow", 0.003)
    metrics.decided("ops", "containers", "allow", 0.003)
    metrics.decided("ops", "containers", "allow", 40.0)  # beyond the last bucket
    metrics.decided("ops", "containers", "refuse", None)  # no latency: counted, not observed
    samples = scrape(metrics)
    buckets = named(samples, "dockguard_request_duration_seconds_bucket")
    assert sorted(float(labels[0][1]) for labels in buckets) == sorted([*LATENCY_BUCKETS, float("inf")])
    for (label,), count in buckets.items():
        bound = float(label[1])
        assert count == (2 if bound >= 0.005 else 0) + (1 if bound == float("inf") else 0), bound
    assert samples[("dockguard_request_duration_seconds_count", ())] == 3
    assert samples[("dockguard_request_duration_seconds_sum", ())] == pytest.approx(40.006)
    assert sum(named(samples, "dockguard_requests_total").values()) == 4


def test_upstream_errors_reloads_and_refused_connections_are_counted_by_kind() -> None:
    metrics = PrometheusMetrics(lambda: [])
    metrics.upstreamError("connect")
    metrics.upstreamError("connect")
    metrics.upstreamError("closed")
    metrics.reloaded(True)
    metrics.reloaded(False)
    metrics.reloaded(False)
    metrics.connectionRefused("allow-list")
    metrics.connectionRefused("max_connections_per_peer")
    metrics.connectionRefused("max_connections_per_peer")
    samples = scrape(metrics)
    assert named(samples, "dockguard_upstream_errors_total") == {(("kind", "connect"),): 2, (("kind", "closed"),): 1}
    assert named(samples, "dockguard_reloads_total") == {(("result", "ok"),): 1, (("result", "failed"),): 2}
    assert named(samples, "dockguard_refused_connections_total") == {
        (("reason", "allow-list"),): 1,
        (("reason", "max_connections_per_peer"),): 2,
    }


def test_certificate_expiry_is_the_last_value_set_per_listener_and_role() -> None:
    metrics = PrometheusMetrics(lambda: [])
    metrics.certificateExpiry("tls-main", "server", 1_800_000_000.0)
    metrics.certificateExpiry("tls-main", "client_ca", 1_900_000_000.0)
    metrics.certificateExpiry("tls-main", "server", 1_850_000_000.0)  # reloaded certificate
    assert named(scrape(metrics), "dockguard_certificate_expiry_timestamp_seconds") == {
        (("listener", "tls-main"), ("role", "server")): 1_850_000_000.0,
        (("listener", "tls-main"), ("role", "client_ca")): 1_900_000_000.0,
    }


def test_open_connections_streams_and_sessions_are_read_from_the_live_connections_at_scrape_time() -> None:
    live: list[object] = []
    calls: list[int] = []

    def connections() -> list[object]:
        calls.append(1)
        return live

    metrics = PrometheusMetrics(connections)
    assert calls == []  # nothing read before a scrape
    live.extend(
        [
            SimpleNamespace(streaming=False, hijacked=False),
            SimpleNamespace(streaming=True, hijacked=False),
            SimpleNamespace(streaming=True, hijacked=False),
            SimpleNamespace(streaming=False, hijacked=True),
        ]
    )
    samples = scrape(metrics)
    assert samples[("dockguard_open_connections", ())] == 4
    assert samples[("dockguard_open_streams", ())] == 2
    assert samples[("dockguard_hijacked_sessions", ())] == 1
    live.clear()  # every connection gone: nothing to decrement by hand
    samples = scrape(metrics)
    assert [samples[(g, ())] for g in ("dockguard_open_connections", "dockguard_open_streams")] == [0, 0]
    assert samples[("dockguard_hijacked_sessions", ())] == 0


@pytest.mark.parametrize(
    "identity",
    ['quote"d', "back\\slash", "new\nline", "brace}{=,", "ünïcødé", 'x"} 1\nfake_metric 99'],
    ids=["quote", "backslash", "newline", "braces", "unicode", "injection"],
)
def test_hostile_label_values_are_escaped_and_read_back_whole(identity: str) -> None:
    metrics = PrometheusMetrics(lambda: [])
    metrics.decided(identity, "containers", "deny", 0.001)
    samples = scrape(metrics)
    assert named(samples, "dockguard_requests_total") == {
        (("decision", "deny"), ("identity", identity), ("section", "containers")): 1
    }
    assert not any(name.startswith("fake") for name, _ in samples)
    # one sample per line: the newline of the value never reaches the text as one
    assert sum(line.startswith("dockguard_requests_total{") for line in metrics.expose().decode().splitlines()) == 1


def test_each_instance_has_a_registry_of_its_own() -> None:
    # a reload or a second service in one process builds another: no
    # "Duplicated timeseries" from prometheus_client's global registry
    first, second = PrometheusMetrics(lambda: []), PrometheusMetrics(lambda: [])
    first.decided("ops", "containers", "allow", None)
    assert named(scrape(first), "dockguard_requests_total") != {}
    assert named(scrape(second), "dockguard_requests_total") == {}


def test_no_metrics_accepts_every_event_and_keeps_nothing() -> None:
    metrics: Metrics = NoMetrics()
    metrics.decided("ops", "containers", "allow", 0.1)
    metrics.upstreamError("connect")
    metrics.reloaded(True)
    metrics.certificateExpiry("tls", "server", 0.0)
    metrics.connectionRefused("allow-list")
    assert vars(metrics) == {}
    assert not hasattr(metrics, "expose")


def test_both_kinds_provide_every_method_of_the_protocol() -> None:
    wanted = {name for name in vars(Metrics) if not name.startswith("_")}
    assert wanted == {"decided", "upstreamError", "reloaded", "certificateExpiry", "connectionRefused"}
    for kind in (NoMetrics, PrometheusMetrics):
        assert wanted <= set(vars(kind)), kind
