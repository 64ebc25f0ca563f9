"""dockguard.exposure: which callers become a TCP listener's fixed identity through the host's network."""

from __future__ import annotations

import pytest

from dockguard.config import build_config, exposure_warnings
from dockguard.errors import ConfigError
from dockguard.exposure import exposures, host_network_reach
from dockguard.groupconfig import policy_from_config
from dockguard.listeners import parse_listen

GROUPS = {
    "builder": {"actions": ["image.build"], "sections": {"ping": "read"}},
    "hostnet": {"sections": {"containers": "write"}, "guards": {"host_namespaces": ["network"]}},
    "plain": {"sections": {"containers": "write"}},
    "fetcher": {"actions": ["image.pull"], "guards": {"remote_fetch": True}},
}


def policy(identities: dict[str, list[str]]):
    found = policy_from_config("t.toml", {"identities": identities, "groups": GROUPS})
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("groups", "reaches"),
    [
        (["builder"], "build"),
        (["hostnet"], "host network"),
        (["fetcher"], "remote_fetch"),
        (["plain"], None),
        (["readonly"], None),
    ],
)
def test_who_reaches_the_host_network(groups, reaches) -> None:
    how = host_network_reach(policy({"x": groups}), "x")
    assert (how is None) if reaches is None else (reaches in how)


def listen(*urls: str):
    return [parse_listen(url) for url in urls]


def test_an_admin_on_loopback_beside_a_builder_is_exposed_with_writes() -> None:
    [exposure] = exposures(listen("tcp://127.0.0.1:2375?identity=ops"), policy({"ops": ["admin"], "ci": ["builder"]}))
    assert (exposure.identity, exposure.reacher, exposure.writes) == ("ops", "ci", True)
    assert exposure.gained[0].startswith(("POST", "PUT", "DELETE"))  # writes are named first


def test_a_reader_on_loopback_is_exposed_with_reads_only() -> None:
    [exposure] = exposures(listen("tcp://127.0.0.1:2375?identity=tv"), policy({"tv": ["readonly"], "ci": ["builder"]}))
    assert exposure.writes is False


@pytest.mark.parametrize(
    "url",
    [
        "tcp://127.0.0.1:2375?identity=ops&trust_host=1",
        "unix:///run/dg/ops.sock?identity=ops",
    ],
)
def test_trusted_and_unix_listeners_are_not_exposed(url: str) -> None:
    assert exposures(listen(url), policy({"ops": ["admin"], "ci": ["builder"]})) == []


def test_no_reacher_no_exposure() -> None:
    assert exposures(listen("tcp://127.0.0.1:2375?identity=ops"), policy({"ops": ["admin"], "app": ["plain"]})) == []


def test_a_reacher_with_every_right_gains_nothing() -> None:
    both = policy({"ops": ["admin"], "ci": ["admin"]})
    assert exposures(listen("tcp://127.0.0.1:2375?identity=ops"), both) == []


def test_start_is_refused_naming_the_listener(tmp_path) -> None:
    path = tmp_path / "dockguard.toml"
    path.write_text(
        '[[listeners]]\nurl = "tcp://127.0.0.1:2375?identity=ops"\n'
        '[identities]\nops = ["admin"]\nci = ["builder"]\n'
        '[groups.builder]\nactions = ["image.build"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        build_config({}, path)
    assert raised.value.key == "listeners[0]" and "trust_host=1" in str(raised.value)


def test_reads_only_are_a_warning(tmp_path) -> None:
    path = tmp_path / "dockguard.toml"
    path.write_text(
        '[[listeners]]\nurl = "tcp://127.0.0.1:2375?identity=tv"\n'
        '[identities]\ntv = ["readonly"]\nci = ["builder"]\n'
        '[groups.builder]\nactions = ["image.build"]\n'
    )
    [warning] = exposure_warnings(build_config({}, path))
    assert "'ci' can reach it" in warning


def test_environment_variables_expose_nothing() -> None:
    config = build_config({"CONTAINERS": "1", "POST": "1", "BUILD": "1"})
    assert exposure_warnings(config) == []
