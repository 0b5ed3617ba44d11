"""The pure diff: a table of cases, policy guards, and properties (hypothesis)."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from js7certctl import certs
from js7certctl.config import Policy
from js7certctl.diff import diff, simulate
from js7certctl.model import Action, DesiredCert, LiveEntry
from tests import certgen


@cache
def cert_pem(index: int) -> str:
    return certgen.make_cert(certgen.ec_key("P-256"), cn=f"agent-{index}", days=365 + index)


def desired(
    alias: str,
    cert: int = 0,
    key: str | None = "/keys/a.key",
    folder: str = "/Encryption",
    agents: tuple[str, ...] = (),
    previous: tuple[str, ...] = (),
    managed: bool = True,
) -> DesiredCert:
    parsed, findings = certs.parse_certificate_text(cert_pem(cert))
    assert parsed is not None, findings
    return DesiredCert(
        alias=alias,
        certificate=parsed.pem,
        private_key_path=key,
        job_resource_folder=folder,
        agents=tuple(sorted(agents)),
        facts=parsed.facts,
        previous_aliases=previous,
        agents_managed=managed,
    )


def live(
    alias: str,
    cert: int = 0,
    key: str | None = "/keys/a.key",
    folder: str | None = "/Encryption",
    agents: tuple[str, ...] | None = (),
    text: str | None = None,
) -> LiveEntry:
    return LiveEntry(
        alias=alias,
        certificate=text if text is not None else cert_pem(cert),
        private_key_path=key,
        job_resource_folder=folder,
        agents=agents,
    )


def rewrap(pem: str) -> str:
    """The same certificate with 76-column lines and CRLF endings."""
    lines = pem.strip().splitlines()
    body = "".join(lines[1:-1])
    wrapped = [body[i : i + 76] for i in range(0, len(body), 76)]
    return "\r\n".join([lines[0], *wrapped, lines[-1]]) + "\r\n"


CASES = [
    # (name, desired, live, action, fields, add, remove)
    (
        "create",
        [desired("a")],
        [],
        Action.CREATE,
        ("certificate", "privateKeyPath", "jobResourceFolder"),
        (),
        (),
    ),
    (
        "create with agents",
        [desired("a", agents=("x", "y"))],
        [],
        Action.CREATE,
        ("certificate", "privateKeyPath", "jobResourceFolder", "agents"),
        ("x", "y"),
        (),
    ),
    ("no-op", [desired("a")], [live("a")], Action.NOOP, (), (), ()),
    (
        "re-wrapped PEM is no change",
        [desired("a")],
        [live("a", text=rewrap(cert_pem(0)))],
        Action.NOOP,
        (),
        (),
        (),
    ),
    (
        "new certificate",
        [desired("a", cert=1)],
        [live("a")],
        Action.UPDATE,
        ("certificate",),
        (),
        (),
    ),
    (
        "garbage live certificate",
        [desired("a")],
        [live("a", text="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")],
        Action.UPDATE,
        ("certificate",),
        (),
        (),
    ),
    (
        "private key path",
        [desired("a", key="/keys/b.key")],
        [live("a")],
        Action.UPDATE,
        ("privateKeyPath",),
        (),
        (),
    ),
    (
        "private key path cleared",
        [desired("a", key=None)],
        [live("a")],
        Action.UPDATE,
        ("privateKeyPath",),
        (),
        (),
    ),
    (
        "folder move",
        [desired("a", folder="/Other")],
        [live("a")],
        Action.UPDATE,
        ("jobResourceFolder",),
        (),
        (),
    ),
    (
        "unknown live folder is not compared",
        [desired("a", folder="/Other")],
        [live("a", folder=None)],
        Action.NOOP,
        (),
        (),
        (),
    ),
    (
        "agents",
        [desired("a", agents=("x", "z"))],
        [live("a", agents=("x", "y"))],
        Action.UPDATE,
        ("agents",),
        ("z",),
        ("y",),
    ),
    (
        "unknown live agents are not compared",
        [desired("a", agents=("x",))],
        [live("a", agents=None)],
        Action.NOOP,
        (),
        (),
        (),
    ),
    (
        "several fields",
        [desired("a", cert=1, key="/k", agents=("x",))],
        [live("a")],
        Action.UPDATE,
        ("certificate", "privateKeyPath", "agents"),
        ("x",),
        (),
    ),
    ("delete", [], [live("a", agents=("x",))], Action.DELETE, (), (), ("x",)),
]


@pytest.mark.parametrize(
    ("name", "want", "have", "action", "fields", "add", "remove"), CASES, ids=[c[0] for c in CASES]
)
def test_diff_cases(
    name: str,
    want: list[DesiredCert],
    have: list[LiveEntry],
    action: Action,
    fields: tuple[str, ...],
    add: tuple[str, ...],
    remove: tuple[str, ...],
) -> None:
    result = diff(want, have, Policy())
    assert result.errors == []
    assert len(result.changes) == 1
    change = result.changes[0]
    assert (change.action, change.fields, change.agents_add, change.agents_remove) == (
        action,
        fields,
        add,
        remove,
    )


def test_live_private_key_is_replaced_and_says_why() -> None:
    key_pem = certgen.private_key_pem(certgen.ec_key("P-256"))
    result = diff([desired("a")], [live("a", text=key_pem + cert_pem(0))], Policy())
    change = result.changes[0]
    assert change.action is Action.UPDATE
    assert change.fields == ("certificate",)
    assert "private key" in change.reasons[0]


def test_scope_hides_aliases_outside_it() -> None:
    policy = Policy(scope=("team-*",))
    result = diff([desired("team-a")], [live("team-b"), live("other")], policy)
    assert [(c.alias, c.action) for c in result.changes] == [
        ("team-a", Action.CREATE),
        ("team-b", Action.DELETE),
    ]


def test_prune_false_keeps_unmanaged_aliases() -> None:
    result = diff([], [live("a")], Policy(prune=False))
    assert result.changes == []


def test_protected_delete_is_an_error_even_without_a_manifest() -> None:
    result = diff([], [live("prod-a"), live("dev-b")], Policy(protect=("prod-*",)))
    assert [c.alias for c in result.changes] == ["dev-b"]
    assert len(result.errors) == 1
    assert "'prod-a'" in result.errors[0]
    assert "protected" in result.errors[0]


def test_protected_alias_may_still_be_updated() -> None:
    result = diff([desired("prod-a", key="/new")], [live("prod-a")], Policy(protect=("prod-*",)))
    assert result.errors == []
    assert result.changes[0].action is Action.UPDATE


def test_max_deletes() -> None:
    have = [live(f"a{i}") for i in range(4)]
    blocked = diff([], have, Policy(max_deletes=3))
    assert "more than policy.maxDeletes (3)" in blocked.errors[0]
    assert "--allow-mass-delete" in blocked.errors[0]
    allowed = diff([], have, Policy(max_deletes=3), allow_mass_delete=True)
    assert allowed.errors == []
    assert allowed.count(Action.DELETE) == 4
    assert diff([], have[:3], Policy(max_deletes=3)).errors == []


# ----------------------------------------------------------------------------- properties

ALIASES = st.sampled_from(["a", "b", "c", "d"])
AGENTS = st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=3).map(
    lambda items: tuple(sorted(items))
)
KEYS = st.sampled_from([None, "/k/1", "/k/2"])
FOLDERS = st.sampled_from(["/Encryption", "/Other"])
CERTS = st.integers(min_value=0, max_value=2)


@st.composite
def desired_sets(draw: st.DrawFn) -> list[DesiredCert]:
    aliases = draw(st.lists(ALIASES, unique=True, max_size=4))
    result = []
    for a in aliases:
        managed = draw(st.booleans())
        result.append(
            desired(
                a,
                cert=draw(CERTS),
                key=draw(KEYS),
                folder=draw(FOLDERS),
                agents=draw(AGENTS) if managed else (),
                previous=tuple(draw(st.lists(ALIASES, unique=True, max_size=2))),
                managed=managed,
            )
        )
    return result


@st.composite
def live_sets(draw: st.DrawFn) -> list[LiveEntry]:
    aliases = draw(st.lists(ALIASES, unique=True, max_size=4))
    return [
        live(
            a,
            cert=draw(CERTS),
            key=draw(KEYS),
            folder=draw(FOLDERS),
            agents=draw(AGENTS),
            text=rewrap(cert_pem(draw(CERTS))) if draw(st.booleans()) else None,
        )
        for a in aliases
    ]


def _as_live(cert: DesiredCert) -> LiveEntry:
    return LiveEntry(
        cert.alias, cert.certificate, cert.private_key_path, cert.job_resource_folder, cert.agents
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(want=desired_sets(), have=live_sets())
def test_applying_the_diff_yields_the_desired_state(
    want: list[DesiredCert], have: list[LiveEntry]
) -> None:
    result = diff(want, have, Policy(), allow_mass_delete=True)
    after = simulate(have, result.actionable)
    assert [e.alias for e in after] == sorted(c.alias for c in want)
    # The simulated keystore now diffs empty against the desired state.
    assert diff(want, after, Policy()).actionable == []


@settings(max_examples=100, deadline=None)
@given(want=desired_sets())
def test_diff_of_a_state_with_itself_is_empty(want: list[DesiredCert]) -> None:
    result = diff(want, [_as_live(c) for c in want], Policy())
    assert result.actionable == []
    assert all(c.action is Action.NOOP for c in result.changes)


# ----------------------------------------------------------------------------- renames, agents


def test_agents_not_in_the_manifest_are_not_managed() -> None:
    result = diff([desired("a", managed=False)], [live("a", agents=("x", "y"))], Policy())
    assert result.changes[0].action is Action.NOOP


def test_rename_is_one_change_that_carries_the_assignments_over() -> None:
    want = desired("new", key="/keys/new.key", previous=("old",), managed=False)
    result = diff([want], [live("old", agents=("x", "y"))], Policy())
    assert result.errors == []
    assert len(result.changes) == 1
    change = result.changes[0]
    assert (change.alias, change.action, change.renamed_from) == ("new", Action.RENAME, "old")
    assert change.agents_add == ("x", "y")
    after = simulate([live("old", agents=("x", "y"))], result.actionable)
    assert [(e.alias, e.agents) for e in after] == [("new", ("x", "y"))]


def test_rename_with_declared_agents_uses_the_manifest() -> None:
    want = desired("new", previous=("old",), agents=("z",))
    result = diff([want], [live("old", agents=("x",))], Policy())
    assert result.changes[0].agents_add == ("z",)


def test_no_rename_when_both_aliases_are_live_or_the_old_one_is_gone() -> None:
    want = desired("new", previous=("old",))
    both = diff([want], [live("old"), live("new")], Policy())
    assert [(c.alias, c.action) for c in both.changes] == [
        ("new", Action.NOOP),
        ("old", Action.DELETE),
    ]
    gone = diff([want], [], Policy())
    assert [(c.alias, c.action) for c in gone.changes] == [("new", Action.CREATE)]


def test_renaming_a_protected_alias_is_an_error() -> None:
    want = desired("prod-new", previous=("prod-old",))
    result = diff([want], [live("prod-old")], Policy(protect=("prod-old",)))
    assert result.changes == []
    assert "renaming 'prod-old' to 'prod-new' deletes 'prod-old'" in result.errors[0]
