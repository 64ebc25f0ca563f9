"""The permissions of the environment variables: L{EnvPolicy}.

L{EnvPolicy} (a L{Policy<dockguard.policy.Policy>}) reproduces the environment-variable permissions of the two
socket proxies people run today, so that dockguard is a drop-in replacement:

* Tecnativa/docker-socket-proxy, C{haproxy.cfg} (read at commit 469e4138 and
  its 2025 C{Dockerfile} at 0919fd76): first C{http-request deny unless
  METH_GET || { env(POST) -m bool }} (HAProxy's C{METH_GET} is GET *and*
  HEAD), then C{allow} rules for C{ALLOW_RESTARTS}
  (C{/containers/ID/((stop)|(restart)|(kill))}), C{ALLOW_START}
  (C{…/start}) and C{ALLOW_STOP} (C{…/stop}), then one C{allow} per section
  matching C{^(/v[\\d\\.]+)?/<prefix>} on the URL-decoded path, then
  C{http-request deny}. Defaults: C{EVENTS=1}, C{PING=1}, C{VERSION=1},
  everything else C{0}.
* linuxserver/docker-socket-proxy, C{root/templates/haproxy.cfg} (read at
  commit 1b802fff): the same section rules, but the C{ALLOW_RESTARTS},
  C{ALLOW_START}, C{ALLOW_STOP}, C{ALLOW_PAUSE} (C{…/pause}) and
  C{ALLOW_UNPAUSE} (C{…/unpause}) rules come *before* the POST gate, so they
  work with C{POST=0}; its README (commit 40afef54) says so for each, and its
  changelog dates the change "26.08.24: Change ALLOW_START, ALLOW_STOP, and
  ALLOW_RESTARTS to work even with POST=0". C{ALLOW_PAUSE}/C{ALLOW_UNPAUSE}
  are not in its Dockerfile's C{ENV}, so they are unset, which HAProxy reads
  as off.
* linuxserver's gates C{ALLOW_ARCHIVE}, C{ALLOW_CHANGES}, C{ALLOW_EXPORT},
  C{ALLOW_LOGS} and C{ALLOW_TOP} are deny rules for
  C{/containers/ID/<archive|changes|export|logs|top>} checked before the
  section rules, so C{CONTAINERS=1} alone no longer exposes them. No stored
  copy of the linuxserver file that adds them could be read; they are modelled
  on Tecnativa's equivalent template
  (C{system_files/usr/local/etc/haproxy/haproxy.cfg.template} at b44f37d9:
  C{http-request deny if { path,url_dec -m reg -i
  ^(/v[\\d\\.]+)?/containers/[a-zA-Z0-9_.-]+/logs } !{ env(ALLOW_LOGS) -m
  bool }}, likewise for archive and export). linuxserver's image closes them
  by default (linuxserver issue #53: an update to 3.4.4 lost container logs for
  a user whose settings had not changed).

  dockguard's choice: **unset, a gate is open** — Tecnativa, the drop-in
  target, has no such gates, and a Tecnativa user with C{CONTAINERS=1} (Dozzle,
  for one) must keep container logs. C{ALLOW_LOGS=0} (etc.) closes the gate
  exactly as linuxserver does; a linuxserver user who relied on the closed
  default writes the C{=0} explicitly. C{describe()} says which applies.

Design decisions (dockguard's, documented here and in C{describe()}):

* The C{ALLOW_*} container actions work whether C{POST} is 1 or 0
  (linuxserver's order). With Tecnativa they silently needed C{POST=1}, a top
  user complaint. C{describe()} prints a warning line when an action switch is
  on while C{POST=0}, because a Tecnativa user reading the same settings
  would expect those actions to be refused.
* The action switches apply to C{POST /containers/{id}/{action}} only (the
  daemon serves those routes for C{POST} alone), with the same id characters
  as the proxies (C{[a-zA-Z0-9_.-]+}). Everything else goes through the POST
  gate and the section rules.
* Sections match the exact first segment of the canonical path (after the
  C{/vX.Y} prefix), case-sensitively: the daemon routes case-sensitively.
  A path without a section is refused (rule C{"no section"}).
* Only the exact methods C{GET} and C{HEAD} are reads; anything else,
  including C{get}, is a write and needs C{POST=1}.
* Values are read as HAProxy reads them, as integers: C{0} is off and any
  other number is on; an empty value means "unset" and takes the default.
  Anything else (C{true}, C{yes}, C{on}, C{false}, C{ 1}) is refused with
  a L{ConfigError<dockguard.errors.ConfigError>} instead of being guessed at:
  Tecnativa silently reads C{true} as 0 (off). Only the ASCII digits 0-9 are
  accepted; a sign is refused too, since how HAProxy reads one is not
  documented.
* Unknown variables are ignored: the environment holds many others.

This module has no I/O and no Twisted import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from dockguard import routes as _routes  # libpod (issue 17)
from dockguard.errors import ConfigError
from dockguard.paths import CanonicalPath
from dockguard.policy import READ_METHODS, Decision, no_section
from dockguard.queries import QueryRefused, parse_query
from dockguard.routes import SECTIONS, Match, Route, Section, container_action

__all__ = [
    "ACTION_SWITCHES",
    "GATES",
    "KNOWN_VARIABLES",
    "SECTION_DEFAULTS",
    "ActionSwitch",
    "EnvPolicy",
    "Gate",
    "Setting",
]


@attrs.frozen
class ActionSwitch:
    """An C{ALLOW_*} variable that allows C{POST /containers/{id}/{action}}."""

    env: str
    actions: frozenset[str]
    #: What it allows, for messages, e.g. C{"starting containers"}.
    doing: str


@attrs.frozen
class Gate:
    """An C{ALLOW_*} variable without which C{/containers/{id}/{resource}} is refused."""

    env: str
    resource: str
    #: What it protects, for messages, e.g. C{"container logs"}.
    what: str


#: The container actions, in the order their rule is reported.
ACTION_SWITCHES: tuple[ActionSwitch, ...] = (
    ActionSwitch("ALLOW_START", frozenset({"start"}), "starting containers"),
    ActionSwitch("ALLOW_STOP", frozenset({"stop"}), "stopping containers"),
    ActionSwitch(
        "ALLOW_RESTARTS",
        frozenset({"stop", "restart", "kill"}),
        "stopping, restarting and killing containers",
    ),
    ActionSwitch("ALLOW_PAUSE", frozenset({"pause"}), "pausing containers"),
    ActionSwitch("ALLOW_UNPAUSE", frozenset({"unpause"}), "unpausing containers"),
)

#: linuxserver's gates on container sub-resources; open unless set to 0.
GATES: tuple[Gate, ...] = (
    Gate("ALLOW_ARCHIVE", "archive", "container file copies (archive)"),
    Gate("ALLOW_CHANGES", "changes", "container filesystem changes"),
    Gate("ALLOW_EXPORT", "export", "container filesystem exports"),
    Gate("ALLOW_LOGS", "logs", "container logs"),
    Gate("ALLOW_TOP", "top", "container process lists (top)"),
)

#: Default of every section variable: Tecnativa's and linuxserver's Dockerfiles.
SECTION_DEFAULTS: Mapping[str, bool] = {
    section.env: section.env in {"EVENTS", "PING", "VERSION"} for section in SECTIONS
}

_POST = "POST"

#: Every variable EnvPolicy reads, each with its default.
KNOWN_VARIABLES: Mapping[str, bool] = {
    **SECTION_DEFAULTS,
    _POST: False,
    **{switch.env: False for switch in ACTION_SWITCHES},
    # Unset, the gates are open: Tecnativa (the drop-in target) has no such
    # gates, and CONTAINERS=1 there includes logs, top, archive, export and
    # changes. Set to 0, a gate closes as in linuxserver's image (whose
    # default is closed): see the module docstring.
    **{gate.env: True for gate in GATES},
}

# --- libpod (issue 17) -------------------------------------------------------
# linuxserver/docker-socket-proxy's LIBPOD_* variables (its Dockerfile and
# root/templates/haproxy.cfg, read at ab9f088): one section variable per
# /libpod/<name> (LIBPOD_PING and LIBPOD_VERSION on by default, the others
# off), LIBPOD_ALLOW_{START,STOP,RESTARTS,PAUSE,UNPAUSE} for
# /libpod/containers/ID/<action> and LIBPOD_ALLOW_POD_* for /libpod/pods/ID/<action>,
# allowed before the POST gate. Its ALLOW_* switches and gates match
# C{^(/v[\d\.]+)?(/libpod)?/(containers|pods)/ID/...}, so they hold for libpod
# containers and pods too, and so they do here. LIBPOD_BUILD and
# LIBPOD_COMMIT are dockguard's (linuxserver refuses those paths).

#: The LIBPOD_* container and pod actions, in the order their rule is reported.
LIBPOD_ACTION_SWITCHES: tuple[tuple[str, ActionSwitch], ...] = (
    ("containers", ActionSwitch("LIBPOD_ALLOW_START", frozenset({"start"}), "starting libpod containers")),
    ("containers", ActionSwitch("LIBPOD_ALLOW_STOP", frozenset({"stop"}), "stopping libpod containers")),
    (
        "containers",
        ActionSwitch(
            "LIBPOD_ALLOW_RESTARTS",
            frozenset({"stop", "restart", "kill"}),
            "stopping, restarting and killing libpod containers",
        ),
    ),
    ("containers", ActionSwitch("LIBPOD_ALLOW_PAUSE", frozenset({"pause"}), "pausing libpod containers")),
    ("containers", ActionSwitch("LIBPOD_ALLOW_UNPAUSE", frozenset({"unpause"}), "unpausing libpod containers")),
    ("pods", ActionSwitch("LIBPOD_ALLOW_POD_START", frozenset({"start"}), "starting pods")),
    ("pods", ActionSwitch("LIBPOD_ALLOW_POD_STOP", frozenset({"stop"}), "stopping pods")),
    (
        "pods",
        ActionSwitch(
            "LIBPOD_ALLOW_POD_RESTARTS", frozenset({"stop", "restart", "kill"}), "stopping, restarting and killing pods"
        ),
    ),
    ("pods", ActionSwitch("LIBPOD_ALLOW_POD_PAUSE", frozenset({"pause"}), "pausing pods")),
    ("pods", ActionSwitch("LIBPOD_ALLOW_POD_UNPAUSE", frozenset({"unpause"}), "unpausing pods")),
)

KNOWN_VARIABLES = {
    **KNOWN_VARIABLES,
    **{section.env: section.env in {"LIBPOD_PING", "LIBPOD_VERSION"} for section in _routes.LIBPOD_SECTIONS},
    **{switch.env: False for _, switch in LIBPOD_ACTION_SWITCHES},
}
# --- end of libpod ---------------------------------------------------------------

# The container id or name characters the proxies' regexes accept.
_CONTAINER_ID = re.compile(r"[a-zA-Z0-9_.-]+")
_DIGITS = re.compile(r"[0-9]+")


@attrs.frozen
class Setting:
    """One variable's value as EnvPolicy understood it."""

    env: str
    on: bool
    #: The value as written in the environment; C{None} if unset or empty
    #: (the default applies).
    written: str | None = None

    @property
    def words(self) -> str:
        """The setting in the user's own words, e.g. C{"CONTAINERS=1"}."""
        value = self.written if self.written is not None else ("1" if self.on else "0")
        return f"{self.env}={value}"


def _parse(env: str, written: str | None) -> Setting:
    if written is None or written == "":
        return Setting(env=env, on=KNOWN_VARIABLES[env], written=None)
    if _DIGITS.fullmatch(written):
        return Setting(env=env, on=int(written) != 0, written=written)
    raise ConfigError("environment", env, _not_a_number(written))


def _not_a_number(written: str) -> str:
    fix = "write 1 to open or 0 to close"
    leading = _DIGITS.match(written)
    if leading is not None:
        # HAProxy's string-to-integer cast reads the leading digits.
        reading = int(leading.group())
        state = "on" if reading else "off"
        return f"{written!r} is not a number: Tecnativa reads it as {reading} ({state}); {fix}"
    if written[0].isascii() and written[0].isalpha():
        # No digits at all: HAProxy's cast yields 0.
        return f"{written!r} is not a number: Tecnativa reads it as 0 (off); {fix}"
    return f"{written!r} is not a number dockguard accepts (only the digits 0-9); {fix}"


#: The routes that hand out what a gate names, whatever their section:
#: C{docker cp} also through the old C{copy} route, logs also through
#: Swarm services and tasks.
_GATED_ROUTES: Mapping[tuple[str, str], str] = {
    ("GET", "/containers/{id}/archive"): "archive",
    ("HEAD", "/containers/{id}/archive"): "archive",
    ("PUT", "/containers/{id}/archive"): "archive",
    ("POST", "/containers/{id}/copy"): "archive",
    ("GET", "/containers/{id}/changes"): "changes",
    ("GET", "/containers/{id}/export"): "export",
    ("GET", "/containers/{id}/logs"): "logs",
    ("GET", "/services/{id}/logs"): "logs",
    ("GET", "/tasks/{id}/logs"): "logs",
    ("GET", "/containers/{id}/top"): "top",
}
#: Attach hands out the whole log history when asked with C{logs=1}.
_LOGS_WHEN_ASKED = frozenset({("GET", "/containers/{id}/attach/ws"), ("POST", "/containers/{id}/attach")})
_GATE_BY_RESOURCE: Mapping[str, Gate] = {gate.resource: gate for gate in GATES}


def _gate_for(path: CanonicalPath, route: Route | None) -> Gate | None:
    """The gate that closes what the request for C{path} hands out, or C{None}.

    Found from C{route}, the route the request is judged as (a HEAD on a GET
    route as that GET), and, for attach, its C{logs} parameter read as the
    daemon reads it; and, as deny rules should be broad, any path under
    C{/containers/{id}/} that names a gated resource.
    """
    if route is not None:
        key = (route.method, route.template)
        if key in _GATED_ROUTES:
            return _GATE_BY_RESOURCE[_GATED_ROUTES[key]]
        if key in _LOGS_WHEN_ASKED:
            try:
                asked = parse_query(path.query).true("logs")
            except QueryRefused:
                asked = True  # two readings: one of them may ask
            if asked:
                return _GATE_BY_RESOURCE["logs"]
    segments = path.segments
    if len(segments) >= 3 and segments[0] == "containers":
        for gate in GATES:
            if gate.resource in segments[2:]:
                return gate
    return None


@attrs.frozen
class EnvPolicy:
    """One permission set for every identity, with Tecnativa's variables.

    Build it with L{from_environ}; see the module docstring for the exact
    semantics and where each comes from.
    """

    #: Every variable in L{KNOWN_VARIABLES}, in that order.
    settings: tuple[Setting, ...] = attrs.field()
    _by_env: Mapping[str, Setting] = attrs.field(init=False, eq=False, hash=False, repr=False)

    @_by_env.default
    def _index(self) -> Mapping[str, Setting]:
        return {setting.env: setting for setting in self.settings}

    @settings.validator
    def _check(self, _attribute: object, settings: tuple[Setting, ...]) -> None:
        names = [setting.env for setting in settings]
        if sorted(names) != sorted(KNOWN_VARIABLES):
            raise ValueError("EnvPolicy needs exactly one Setting per known variable")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EnvPolicy:
        """Read the permission variables from C{environ} (e.g. C{os.environ}).

        Raises L{ConfigError<dockguard.errors.ConfigError>} (source C{"environment"})
        for the first value that is not a plain number.
        """
        return cls(settings=tuple(_parse(env, environ.get(env)) for env in KNOWN_VARIABLES))

    def setting(self, env: str) -> Setting:
        """The setting of one known variable, e.g. C{setting("POST")}."""
        return self._by_env[env]

    def is_on(self, env: str) -> bool:
        """Whether one known variable is on."""
        return self._by_env[env].on

    def shut_out(self, identity: str) -> Decision | None:
        """Never: every identity has the same permissions under this policy."""
        return None

    def decide(self, identity: str, method: str, path: CanonicalPath, match: Match) -> Decision:
        """Authorise C{method path} (C{match} is its lookup); C{identity} does not matter to this policy."""
        if path.segments[:1] == (_routes.LIBPOD,):  # libpod (issue 17)
            return self._decide_libpod(method, path, match)
        section = match.section
        if section is None:
            return no_section(path)

        action = container_action(path)

        # 1. Container actions, before the POST gate (linuxserver's order).
        if method == "POST" and action is not None and _CONTAINER_ID.fullmatch(path.segments[1]):
            for switch in ACTION_SWITCHES:
                if action in switch.actions and self.is_on(switch.env):
                    setting = self.setting(switch.env)
                    post = self.setting(_POST)
                    also = "" if post.on else f", even though other writes are closed ({post.words})"
                    return Decision(
                        allowed=True,
                        rule=setting.words,
                        reason=f"{switch.doing} is allowed ({setting.words}){also}",
                    )

        # 2. The POST gate: writes need POST=1.
        post = self.setting(_POST)
        if method not in READ_METHODS and not post.on:
            return Decision(
                allowed=False,
                rule=post.words,
                reason=self._write_refused(method, path, action, post),
            )

        # 3. The section.
        opened = self.setting(section.env)
        gate = _gate_for(path, match.judged_route)
        if not opened.on:
            also = ""
            if gate is not None and not self.is_on(gate.env):
                also = f" ({gate.what} also need {gate.env}=1)"
            return Decision(
                allowed=False,
                rule=opened.words,
                reason=(f"the {section.name} section is closed ({opened.words}); set {section.env}=1 to open it{also}"),
            )

        # 4. linuxserver's gates, on every route that hands out what they name.
        if gate is not None:
            gated = self.setting(gate.env)
            if not gated.on:
                return Decision(
                    allowed=False,
                    rule=gated.words,
                    reason=(
                        f"{gate.what} are closed ({gated.words}) even though the "
                        f"{section.name} section is open ({opened.words}); set "
                        f"{gate.env}=1 to open them"
                    ),
                )
            return Decision(
                allowed=True,
                rule=gated.words,
                reason=self._open_reason(method, section, opened, post, f"{gate.what} are open ({gated.words}) and "),
            )

        # 5. Allowed by the section.
        return Decision(
            allowed=True,
            rule=opened.words,
            reason=self._open_reason(method, section, opened, post, ""),
        )

    # --- libpod (issue 17) ---------------------------------------------------
    def _decide_libpod(self, method: str, path: CanonicalPath, match: Match) -> Decision:
        """C{/libpod/...}: linuxserver's LIBPOD_* rules, in its order (see KNOWN_VARIABLES)."""
        section = match.section
        if section is None:
            return no_section(path)
        segments = path.segments
        kind = segments[1] if len(segments) > 1 else ""
        if method == "POST" and len(segments) == 4 and kind in ("containers", "pods"):
            if _CONTAINER_ID.fullmatch(segments[2]):
                switches = [switch for switch in ACTION_SWITCHES]
                switches += [switch for where, switch in LIBPOD_ACTION_SWITCHES if where == kind]
                for switch in switches:
                    if segments[3] in switch.actions and self.is_on(switch.env):
                        setting = self.setting(switch.env)
                        post = self.setting(_POST)
                        also = "" if post.on else f", even though other writes are closed ({post.words})"
                        return Decision(
                            allowed=True,
                            rule=setting.words,
                            reason=f"{segments[3]} of {kind} is allowed ({setting.words}){also}",
                        )
        post = self.setting(_POST)
        if method not in READ_METHODS and not post.on:
            return Decision(allowed=False, rule=post.words, reason=self._write_refused(method, path, None, post))
        opened = self.setting(section.env)
        if not opened.on:
            return Decision(
                allowed=False,
                rule=opened.words,
                reason=f"the {section.name} section is closed ({opened.words}); set {section.env}=1 to open it",
            )
        if kind in ("containers", "pods") and len(segments) >= 4:
            resources = set(segments[3:])
            if segments[3] == "attach":  # attach hands out the log history when asked (logs=1)
                try:
                    asked = parse_query(path.query).true("logs")
                except QueryRefused:
                    asked = True
                if asked:
                    resources.add("logs")
            for gate in GATES:
                if gate.resource in resources and not self.is_on(gate.env):
                    gated = self.setting(gate.env)
                    return Decision(
                        allowed=False,
                        rule=gated.words,
                        reason=(
                            f"{gate.what} are closed ({gated.words}), for libpod {kind} too; "
                            f"set {gate.env}=1 to open them"
                        ),
                    )
        return Decision(allowed=True, rule=opened.words, reason=self._open_reason(method, section, opened, post, ""))

    def _describe_libpod(self) -> list[str]:
        opened = [s for s in _routes.LIBPOD_SECTIONS if self.is_on(s.env)]
        lines = [
            "open libpod (Podman) sections: "
            + (", ".join(f"{s.name} ({self.setting(s.env).words})" for s in opened) or "none")
        ]
        actions = [s for _, s in LIBPOD_ACTION_SWITCHES if self.is_on(s.env)]
        if actions:
            lines.append("libpod actions allowed whatever POST says: " + ", ".join(s.doing for s in actions))
        return lines

    # --- end of libpod ---------------------------------------------------------

    @staticmethod
    def _open_reason(method: str, section: Section, opened: Setting, post: Setting, lead: str) -> str:
        text = f"{lead}the {section.name} section is open ({opened.words})"
        if method not in READ_METHODS:
            text += f" and writes are open ({post.words})"
        return text

    @staticmethod
    def _write_refused(method: str, path: CanonicalPath, action: str | None, post: Setting) -> str:
        text = f"{method} {path.path} is a write, and writes are closed ({post.words})"
        if method.upper() in READ_METHODS:
            text += "; methods are case-sensitive and only GET and HEAD are reads"
        switches = [s for s in ACTION_SWITCHES if action is not None and action in s.actions]
        if switches and method == "POST":
            names = " or ".join(f"{s.env}=1" for s in switches)
            text += f"; set {names} to allow only this action, or {_POST}=1 to open all writes in the open sections"
        else:
            text += f"; set {_POST}=1 to open writes in the open sections"
        return text

    def describe(self) -> list[str]:
        """Human lines for the start-up log: which sections and switches are open."""
        lines: list[str] = []
        opened = [s for s in SECTIONS if self.is_on(s.env)]
        closed = [s for s in SECTIONS if not self.is_on(s.env)]
        lines.append(
            "open sections: " + (", ".join(f"{s.name} ({self.setting(s.env).words})" for s in opened) or "none")
        )
        lines.append("closed sections: " + (", ".join(s.name for s in closed) or "none"))

        post = self.setting(_POST)
        if post.on:
            lines.append(f"writes: open ({post.words}): every method passes in the open sections")
        else:
            lines.append(f"writes: closed ({post.words}): only GET and HEAD pass, except the container actions below")

        actions = [s for s in ACTION_SWITCHES if self.is_on(s.env)]
        if actions:
            listed = ", ".join(f"{s.doing} ({self.setting(s.env).words})" for s in actions)
            lines.append(f"container actions allowed whatever POST and CONTAINERS say: {listed}")
        else:
            lines.append(
                "container actions: none allowed on their own (every ALLOW_START/STOP/RESTARTS/PAUSE/UNPAUSE is 0)"
            )

        containers = self.setting("CONTAINERS")
        gate_words = ", ".join(
            f"{g.resource} {'open' if self.is_on(g.env) else 'closed'} ("
            + (
                self.setting(g.env).words
                if self.setting(g.env).written is not None
                else f"{g.env} unset: follows {containers.env}, as with Tecnativa"
            )
            + ")"
            for g in GATES
        )
        lines.append(f"container sub-resources (need {containers.env}=1 too): {gate_words}")

        if actions and not post.on:
            names = ", ".join(self.setting(s.env).words for s in actions)
            lines.append(
                f"warning: {names} with {post.words}: dockguard allows these container "
                "actions although other writes are closed (as linuxserver/socket-proxy "
                f"does); Tecnativa's proxy would refuse them unless {_POST}=1"
            )
        open_gates = [g for g in GATES if self.setting(g.env).written is not None and self.is_on(g.env)]
        if open_gates and not containers.on:
            names = ", ".join(self.setting(g.env).words for g in open_gates)
            lines.append(f"note: {names} has no effect while {containers.words}")
        lines.extend(self._describe_libpod())  # libpod (issue 17)
        lines.append(
            "escalation guards: off (with environment variables dockguard relays container, "
            "exec and service bodies as Tecnativa does; give identities groups in a "
            "configuration file to guard them: docs/guards.md)"
        )
        return lines
