"""Pure: desired entries x live entries x policy -> changes (no I/O, no printing).

Certificates compare by the SHA-256 fingerprint of their DER, so re-wrapped PEM is no change.
A live value the backend could not read (``None`` folder or agents) is not compared. Live aliases
outside the policy's scope are never touched nor reported.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from js7certctl import certs
from js7certctl.config import Policy
from js7certctl.model import (
    FIELD_AGENTS,
    FIELD_CERTIFICATE,
    FIELD_JOB_RESOURCE_FOLDER,
    FIELD_PRIVATE_KEY_PATH,
    Action,
    CertFacts,
    Change,
    DesiredCert,
    LiveEntry,
    ManifestChange,
)


@dataclass(slots=True)
class DiffResult:
    changes: list[Change] = field(default_factory=list)  # every alias in scope, no-ops included
    errors: list[str] = field(default_factory=list)  # policy violations: the plan cannot apply

    @property
    def actionable(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)


def _protecting_pattern(policy: Policy, alias: str) -> str | None:
    for pattern in policy.protect:
        if fnmatch.fnmatchcase(alias, pattern):
            return pattern
    return None


def compare(
    want: DesiredCert, have: LiveEntry, have_facts: CertFacts | None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(changed fields, agents to add, agents to remove, reasons) of one alias."""
    fields: list[str] = []
    reasons: list[str] = []
    if have_facts is None:
        fields.append(FIELD_CERTIFICATE)
        reasons.append("the live certificate cannot be read")
    elif certs.contains_private_key(have.certificate):
        fields.append(FIELD_CERTIFICATE)
        reasons.append("the live entry holds a private key; storing replaces it")
    elif have_facts.fingerprint != want.fingerprint:
        fields.append(FIELD_CERTIFICATE)
    if (have.private_key_path or None) != want.private_key_path:
        fields.append(FIELD_PRIVATE_KEY_PATH)
    if (
        have.job_resource_folder is not None
        and have.job_resource_folder != want.job_resource_folder
    ):
        fields.append(FIELD_JOB_RESOURCE_FOLDER)
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    if have.agents is not None and want.agents_managed and have.agents != want.agents:
        add = tuple(sorted(set(want.agents) - set(have.agents)))
        remove = tuple(sorted(set(have.agents) - set(want.agents)))
        if add or remove:
            fields.append(FIELD_AGENTS)
    return tuple(fields), add, remove, tuple(reasons)


def _renames(wanted: dict[str, DesiredCert], have: dict[str, LiveEntry]) -> dict[str, str]:
    """new alias -> old alias, for manifests whose previousAliases name a live alias that no
    manifest claims any more, while the new alias is not live yet."""
    renames: dict[str, str] = {}
    taken: set[str] = set()
    for alias in sorted(wanted):
        if alias in have:
            continue
        for old in wanted[alias].previous_aliases:
            if old in have and old not in wanted and old not in taken:
                renames[alias] = old
                taken.add(old)
                break
    return renames


def diff(
    desired: Sequence[DesiredCert],
    live: Sequence[LiveEntry],
    policy: Policy,
    *,
    allow_mass_delete: bool = False,
    facts_of: Callable[[str], CertFacts | None] = certs.live_facts,
) -> DiffResult:
    """The changes that make the live keystore (in scope) match the desired entries."""
    result = DiffResult()
    wanted = {d.alias: d for d in desired}
    have = {entry.alias: entry for entry in live if policy.in_scope(entry.alias)}
    renames = _renames(wanted, have)
    consumed = set(renames.values())
    for alias in sorted(wanted.keys() | have.keys()):
        want = wanted.get(alias)
        entry = have.get(alias)
        if alias in consumed:
            continue
        if want is not None and alias in renames:
            old = have[renames[alias]]
            pattern = _protecting_pattern(policy, old.alias)
            if pattern is not None:
                result.errors.append(
                    f"renaming {old.alias!r} to {alias!r} deletes {old.alias!r}, which is "
                    f"protected by policy.protect ({pattern!r}); remove the protection in a "
                    "reviewed change first"
                )
                continue
            carried = want.agents if want.agents_managed else (old.agents or ())
            result.changes.append(
                Change(
                    alias=alias,
                    action=Action.RENAME,
                    before=old,
                    after=want,
                    fields=(FIELD_CERTIFICATE, FIELD_PRIVATE_KEY_PATH, FIELD_JOB_RESOURCE_FOLDER)
                    + ((FIELD_AGENTS,) if carried else ()),
                    agents_add=tuple(sorted(carried)),
                    before_facts=facts_of(old.certificate),
                    renamed_from=old.alias,
                )
            )
        elif want is not None and entry is None:
            result.changes.append(
                Change(
                    alias=alias,
                    action=Action.CREATE,
                    before=None,
                    after=want,
                    fields=(FIELD_CERTIFICATE, FIELD_PRIVATE_KEY_PATH, FIELD_JOB_RESOURCE_FOLDER)
                    + ((FIELD_AGENTS,) if want.agents else ()),
                    agents_add=want.agents,
                )
            )
        elif want is not None and entry is not None:
            if facts_of is certs.live_facts and entry.certificate == want.certificate:
                # The stored text is the manifest's normalised PEM block (what apply stores),
                # so its facts are the manifest's: parsing it again would give the same.
                before_facts: CertFacts | None = want.facts
            else:
                before_facts = facts_of(entry.certificate)
            fields, add, remove, reasons = compare(want, entry, before_facts)
            result.changes.append(
                Change(
                    alias=alias,
                    action=Action.UPDATE if fields else Action.NOOP,
                    before=entry,
                    after=want,
                    fields=fields,
                    agents_add=add,
                    agents_remove=remove,
                    reasons=reasons,
                    before_facts=before_facts,
                )
            )
        elif entry is not None and policy.prune:
            pattern = _protecting_pattern(policy, alias)
            if pattern is not None:
                result.errors.append(
                    f"alias {alias!r} has no manifest, but it is protected by policy.protect "
                    f"({pattern!r}) and will not be deleted; restore its manifest, or remove "
                    "the protection in a reviewed change first"
                )
                continue
            result.changes.append(
                Change(
                    alias=alias,
                    action=Action.DELETE,
                    before=entry,
                    after=None,
                    agents_remove=entry.agents or (),
                    before_facts=facts_of(entry.certificate),
                )
            )
    deletes = result.count(Action.DELETE)
    if deletes > policy.max_deletes and not allow_mass_delete:
        result.errors.append(
            f"the plan deletes {deletes} aliases, more than policy.maxDeletes "
            f"({policy.max_deletes}); check that the manifests are all there, and pass "
            "--allow-mass-delete if this is intended"
        )
    return result


def referenced_deletes(
    changes: Sequence[Change], referenced_by: Mapping[str, Sequence[str]], *, limit: int = 10
) -> list[str]:
    """Policy errors for deletes of aliases whose Job Resource JS7 objects still reference
    (``referenced_by``: alias -> descriptions of those objects)."""
    errors: list[str] = []
    for change in changes:
        users = referenced_by.get(change.alias, ()) if change.action is Action.DELETE else ()
        if not users:
            continue
        shown = "; ".join(users[:limit])
        if len(users) > limit:
            shown += f"; and {len(users) - limit} more"
        errors.append(
            f"alias {change.alias!r} is deleted, but {len(users)} JS7 object(s) in the "
            f"repository still use its Job Resource: {shown}. Change them first, or pass "
            "--allow-referenced-delete if this is intended"
        )
    return errors


def simulate(live: Sequence[LiveEntry], changes: Sequence[Change]) -> list[LiveEntry]:
    """What the keystore would hold after applying ``changes`` with JOC's semantics (for tests
    and for checking an apply): store replaces certificate, path and folder and keeps the
    assignments; assignment changes add and remove; delete drops the alias and its assignments."""
    state = {entry.alias: entry for entry in live}
    for change in changes:
        if change.action is Action.DELETE:
            state.pop(change.alias, None)
            continue
        if change.action is Action.RENAME and change.renamed_from is not None:
            state.pop(change.renamed_from, None)
        if change.after is None or change.action is Action.NOOP:
            continue
        old = state.get(change.alias)
        agents = set(old.agents or ()) if old is not None else set()
        agents |= set(change.agents_add)
        agents -= set(change.agents_remove)
        state[change.alias] = LiveEntry(
            alias=change.alias,
            certificate=change.after.certificate,
            private_key_path=change.after.private_key_path,
            job_resource_folder=change.after.job_resource_folder,
            agents=tuple(sorted(agents)),
        )
    return [state[alias] for alias in sorted(state)]


def manifest_changes(
    base: Sequence[DesiredCert], head: Sequence[DesiredCert]
) -> list[ManifestChange]:
    """Aliases added, edited or removed in the manifests between two revisions."""
    before = {c.alias: c for c in base}
    after = {c.alias: c for c in head}
    result: list[ManifestChange] = []
    for alias in sorted(before.keys() | after.keys()):
        old, new = before.get(alias), after.get(alias)
        if old is None and new is not None:
            result.append(ManifestChange(alias, "added", path=new.origin.path))
        elif new is None and old is not None:
            result.append(ManifestChange(alias, "removed", path=old.origin.path))
        elif old is not None and new is not None:
            fields = [
                name
                for name, a, b in (
                    (FIELD_CERTIFICATE, old.fingerprint, new.fingerprint),
                    (FIELD_PRIVATE_KEY_PATH, old.private_key_path, new.private_key_path),
                    (FIELD_JOB_RESOURCE_FOLDER, old.job_resource_folder, new.job_resource_folder),
                    (FIELD_AGENTS, old.agents, new.agents),
                    ("labels", old.labels, new.labels),
                    ("previousAliases", old.previous_aliases, new.previous_aliases),
                )
                if a != b
            ]
            if fields:
                result.append(ManifestChange(alias, "edited", tuple(fields), new.origin.path))
    return result
