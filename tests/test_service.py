"""
L{dockguard.service.no_longer_admitted}: what a reload asks of each open
connection (the end-to-end run is tests/test_e2e_revoke.py).
"""

from __future__ import annotations

from types import SimpleNamespace

from dockguard.envpolicy import EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.presets import PRESETS
from dockguard.service import no_longer_admitted
from dockguard.tls import server_options
from harness.pki import TestPKI

GROUPS = GroupPolicy(identities={"ops": ["readonly"], "idle": []}, groups={"readonly": PRESETS["readonly"]})


def connection(identity: str | None, disconnecting: bool = False) -> SimpleNamespace:
    return SimpleNamespace(identity=identity, certificate=None, transport=SimpleNamespace(disconnecting=disconnecting))


def test_plain_listener_identities_are_judged_by_the_policy_alone() -> None:
    assert no_longer_admitted(connection("ops"), GROUPS, None) is None  # type: ignore[arg-type]
    gone = no_longer_admitted(connection("former"), GROUPS, None)  # type: ignore[arg-type]
    assert gone is not None and gone.startswith("unknown identity 'former'")
    idle = no_longer_admitted(connection("idle"), GROUPS, None)  # type: ignore[arg-type]
    assert idle is not None and "has no groups" in idle
    # environment variables: one permission set for everyone, nobody is shut out
    assert no_longer_admitted(connection("former"), EnvPolicy.from_environ({}), None) is None  # type: ignore[arg-type]


def test_a_handshake_begun_under_the_old_ca_and_crl_is_refused(pki: TestPKI) -> None:
    tls = server_options(pki.server_cert_path, pki.server_key_path, pki.ca_path)
    reason = no_longer_admitted(connection(None), GROUPS, tls)  # type: ignore[arg-type]
    assert reason == "its TLS handshake began under the previous client CA and CRL"
    # one already refused (and closing) is left to close
    assert no_longer_admitted(connection(None, disconnecting=True), GROUPS, tls) is None  # type: ignore[arg-type]
