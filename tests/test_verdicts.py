"""Remembered verdicts (L{dockguard.relay.verdict.Verdicts}): the same as deciding afresh."""

from __future__ import annotations

from dockguard.envpolicy import EnvPolicy
from dockguard.groups import GroupPolicy
from dockguard.presets import PRESETS
from dockguard.relay.verdict import Forward, Refuse, Verdicts, decide

POLICY = GroupPolicy(identities={"reader": ("readonly",), "nobody": ()}, groups=dict(PRESETS))
LIST = (b"GET", b"/v1.41/containers/json", (), False)


def test_each_identity_gets_its_own_verdict() -> None:
    verdicts = Verdicts()
    assert type(verdicts.decide(*LIST, "reader", POLICY, None)) is Forward
    assert type(verdicts.decide(*LIST, "nobody", POLICY, None)) is Refuse
    assert type(verdicts.decide(*LIST, "reader", POLICY, None)) is Forward


def test_learn_mode_is_part_of_what_is_remembered() -> None:
    verdicts = Verdicts()
    assert type(verdicts.decide(*LIST, "nobody", POLICY, None)) is Refuse
    learned = verdicts.decide(*LIST, "nobody", POLICY, "tcp://127.0.0.1:2375")
    assert type(learned) is Forward and learned.word == "would-deny"


def test_a_new_policy_forgets_what_the_old_one_decided() -> None:
    verdicts = Verdicts()
    closed, opened = EnvPolicy.from_environ({}), EnvPolicy.from_environ({"CONTAINERS": "1"})
    assert type(verdicts.decide(*LIST, "tool", closed, None)) is Refuse
    assert type(verdicts.decide(*LIST, "tool", opened, None)) is Forward


def test_what_is_remembered_is_what_deciding_afresh_gives() -> None:
    verdicts = Verdicts()
    for identity in ("reader", "nobody"):
        for target in (b"/v1.41/containers/json", b"/_ping", b"/v1.41/containers/x/export", b"/nope/%0a"):
            for method in (b"GET", b"POST", b"HEAD"):
                args = (method, target, (b"application/json",), method == b"POST", identity, POLICY, None)
                assert verdicts.decide(*args) == decide(*args) == verdicts.decide(*args)


def test_memory_is_bounded() -> None:
    verdicts = Verdicts(size=8)
    for n in range(20):
        verdicts.decide(b"GET", b"/v1.41/containers/c%d/json" % n, (), False, "reader", POLICY, None)
        assert len(verdicts._known) <= 8
    verdicts.decide(b"GET", b"/v1.41/containers/" + b"x" * 600 + b"/json", (), False, "reader", POLICY, None)
    assert all(len(key[1]) < 600 for key in verdicts._known), "a long target is not remembered"
