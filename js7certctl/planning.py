"""Making a plan: manifests (desired) x live keystore x policy -> :class:`Plan`."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from js7certctl.config import Target
from js7certctl.diff import diff, manifest_changes, referenced_deletes
from js7certctl.errors import Js7CertCtlError, PlanError, SourceError
from js7certctl.keystore.base import Keystore
from js7certctl.keystore.factory import BackendOptions, connection_of, open_keystore
from js7certctl.model import Action, Change, DesiredCert, LiveEntry, Problem
from js7certctl.planfile import Guards, Plan, live_fingerprint
from js7certctl.secrets import BlastReport, Scan
from js7certctl.workspace import Workspace


@dataclass(slots=True)
class Planned:
    plan: Plan
    warnings: list[Problem]  # every warning of the manifests (health ones are in the plan too)
    desired: list[DesiredCert] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    plans: list[Planned] = field(default_factory=list)
    failures: list[tuple[str, Js7CertCtlError]] = field(default_factory=list)


def open_target(workspace: Workspace, target: Target, options: BackendOptions) -> Keystore:
    path = workspace.keystore_path(target) if target.backend == "local" else None
    return open_keystore(
        target.name,
        target.backend,
        connection_of(target, path, workspace.base_path),
        options,
    )


# One scan per source and run: `plan --all-targets` plans every target from the same files.
_SCANS: weakref.WeakKeyDictionary[Any, Scan] = weakref.WeakKeyDictionary()


def blast_radius(
    workspace: Workspace,
    desired: Sequence[DesiredCert],
    live: Sequence[LiveEntry],
    changes: Sequence[Change],
) -> BlastReport | None:
    """What in the repository (the plan's source) uses the Job Resources of the updated, deleted
    and renamed aliases; None, without reading anything, when there are none."""
    from js7certctl.secrets import blast_report, public_keys_from, scan_source

    looked_for = {
        c.alias: c.renamed_from or c.alias
        for c in changes
        if c.action in (Action.UPDATE, Action.DELETE, Action.RENAME)
    }
    if not looked_for:
        return None
    certificates: dict[str, list[str]] = {}
    for entry in live:
        certificates.setdefault(entry.alias, []).append(entry.certificate)
    for cert in desired:
        certificates.setdefault(cert.alias, []).append(cert.certificate)
    try:
        scan = _SCANS.get(workspace.source)
    except TypeError:  # a source that cannot be weakly referenced: no cache
        scan = None
    if scan is None:
        scan = scan_source(workspace.source, "")
        with contextlib.suppress(TypeError):
            _SCANS[workspace.source] = scan
    return blast_report(
        scan,
        looked_for,
        encipherment=certificates.keys(),
        public_keys_of=public_keys_from(certificates),
    )


def make_plan(
    workspace: Workspace,
    target: Target,
    keystore: Keystore,
    *,
    allow_mass_delete: bool,
    now: datetime,
    allow_referenced_delete: bool = False,
) -> Planned:
    """Load and check the manifests, read the live keystore, and diff them under the policy."""
    result = workspace.load_valid(target, now=now)
    policy = workspace.config.policy_for(target)
    live = keystore.list_entries()
    outcome = diff(result.certs, live, policy, allow_mass_delete=allow_mass_delete)
    if outcome.errors:
        raise PlanError("the plan cannot be applied:\n  - " + "\n  - ".join(outcome.errors))
    radius = blast_radius(workspace, result.certs, live, outcome.actionable)
    if radius is not None and not allow_referenced_delete:
        referenced = {
            alias: [ref.describe() for ref in item.references]
            for alias, item in radius.by_alias.items()
        }
        errors = referenced_deletes(outcome.actionable, referenced)
        if errors:
            raise PlanError("the plan cannot be applied:\n  - " + "\n  - ".join(errors))
    path = workspace.keystore_path(target) if target.backend == "local" else None
    plan = Plan(
        source=workspace.source.info,
        target=keystore.identity,
        connection=connection_of(target, path, workspace.base_path),
        guards=Guards.from_policy(
            policy,
            allow_mass_delete=allow_mass_delete,
            allow_referenced_delete=allow_referenced_delete,
        ),
        changes=outcome.actionable,
        unchanged=len(outcome.changes) - len(outcome.actionable),
        live_fingerprint=live_fingerprint(live, policy),
        warnings=[
            p
            for p in result.warnings
            if p.rule.startswith(("cert-", "rsa-", "key-", "public-key", "sha1"))
        ],
        created=now,
        blast_radius=radius,
    )
    return Planned(plan=plan, warnings=result.warnings, desired=result.certs)


def attach_base(planned: Planned, base: Workspace, target: Target, now: datetime) -> None:
    """Record what the manifests changed between ``base`` and the planned revision."""
    same = base.config.targets.get(target.name) or base.config.target(None)
    try:
        before = base.load(same, now=now).certs
    except SourceError:
        before = []  # no manifests at the base yet: everything is added
    planned.plan.base = base.source.info
    planned.plan.manifest_changes = manifest_changes(before, planned.desired)


def plan_targets(
    workspace: Workspace,
    targets: Sequence[Target],
    options: BackendOptions,
    *,
    allow_mass_delete: bool,
    now: datetime,
    base: Workspace | None = None,
    keep_going: bool = False,
    allow_referenced_delete: bool = False,
) -> Outcome:
    """A plan per target; with ``keep_going`` a failing target is recorded and the rest planned."""
    outcome = Outcome()
    for target in targets:
        try:
            keystore = open_target(workspace, target, options)
            try:
                planned = make_plan(
                    workspace,
                    target,
                    keystore,
                    allow_mass_delete=allow_mass_delete,
                    now=now,
                    allow_referenced_delete=allow_referenced_delete,
                )
            finally:
                keystore.close()
            if base is not None:
                attach_base(planned, base, target, now)
            outcome.plans.append(planned)
        except Js7CertCtlError as exc:
            if not keep_going:
                raise
            outcome.failures.append((target.name, exc))
    return outcome
