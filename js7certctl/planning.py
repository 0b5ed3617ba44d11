"""Making a plan: manifests (desired) x live keystore x policy -> :class:`Plan`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from js7certctl.config import Target
from js7certctl.diff import diff
from js7certctl.errors import PlanError
from js7certctl.keystore.base import Keystore
from js7certctl.keystore.factory import BackendOptions, connection_of, open_keystore
from js7certctl.model import Problem
from js7certctl.planfile import Guards, Plan, live_fingerprint
from js7certctl.workspace import Workspace


@dataclass(slots=True)
class Planned:
    plan: Plan
    warnings: list[Problem]  # every warning of the manifests (health ones are in the plan too)


def open_target(workspace: Workspace, target: Target, options: BackendOptions) -> Keystore:
    path = workspace.keystore_path(target) if target.backend == "local" else None
    return open_keystore(
        target.name,
        target.backend,
        connection_of(target, path, workspace.base_path),
        options,
    )


def make_plan(
    workspace: Workspace,
    target: Target,
    keystore: Keystore,
    *,
    allow_mass_delete: bool,
    now: datetime,
) -> Planned:
    """Load and check the manifests, read the live keystore, and diff them under the policy."""
    result = workspace.load_valid(target, now=now)
    policy = workspace.config.policy_for(target)
    live = keystore.list_entries()
    outcome = diff(result.certs, live, policy, allow_mass_delete=allow_mass_delete)
    if outcome.errors:
        raise PlanError("the plan cannot be applied:\n  - " + "\n  - ".join(outcome.errors))
    path = workspace.keystore_path(target) if target.backend == "local" else None
    plan = Plan(
        source=workspace.source.info,
        target=keystore.identity,
        connection=connection_of(target, path, workspace.base_path),
        guards=Guards.from_policy(policy, allow_mass_delete=allow_mass_delete),
        changes=outcome.actionable,
        unchanged=len(outcome.changes) - len(outcome.actionable),
        live_fingerprint=live_fingerprint(live, policy),
        warnings=[
            p
            for p in result.warnings
            if p.rule.startswith(("cert-", "rsa-", "key-", "public-key", "sha1"))
        ],
        created=now,
    )
    return Planned(plan=plan, warnings=result.warnings)
