"""Runs a plan against a keystore: stale check, ordered steps, progress events, verification.

Order: stores (creates and updates), then assignment changes, then deletes. Each step is reported
as it completes. On a failure apply stops and raises :class:`ApplyError` naming what was applied
and what was not; a new plan then shows exactly the remainder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from js7certctl.diff import diff
from js7certctl.errors import ApplyError, Js7CertCtlError, StalePlanError
from js7certctl.keystore.base import Keystore
from js7certctl.model import Action, AuditLog, Change
from js7certctl.planfile import Plan, changed_aliases, live_fingerprint


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # "store", "assign", "unassign", "delete"
    alias: str
    change: Change
    agent: str | None = None

    def describe(self) -> str:
        if self.kind == "store":
            if self.change.action is Action.RENAME:
                return f"created {self.alias} (renamed from {self.change.renamed_from})"
            verb = "created" if self.change.action is Action.CREATE else "updated"
            return f"{verb} {self.alias}"
        if self.kind == "assign":
            return f"assigned {self.alias} to Agent {self.agent}"
        if self.kind == "unassign":
            return f"removed the assignment of {self.alias} from Agent {self.agent}"
        return f"deleted {self.alias}"


@dataclass(slots=True)
class ApplyReport:
    done: list[Step] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)  # Job Resources of deleted aliases


def steps_of(changes: list[Change]) -> list[Step]:
    """Stores (creates, updates, renames), then assignment changes, then deletes (the old
    aliases of renames last)."""
    stores = [Step("store", c.alias, c) for c in changes if c.needs_store and c.after]
    assignments: list[Step] = []
    for change in changes:
        if change.action in (Action.CREATE, Action.UPDATE, Action.RENAME):
            assignments += [Step("assign", change.alias, change, a) for a in change.agents_add]
            assignments += [Step("unassign", change.alias, change, a) for a in change.agents_remove]
    deletes = [Step("delete", c.alias, c) for c in changes if c.action is Action.DELETE]
    deletes += [
        Step("delete", c.renamed_from, c)
        for c in changes
        if c.action is Action.RENAME and c.renamed_from is not None
    ]
    return stores + assignments + deletes


def check_not_stale(plan: Plan, keystore: Keystore) -> None:
    live = keystore.list_entries()
    now = live_fingerprint(live, plan.guards.policy())
    moved = changed_aliases(plan.live_fingerprint, now)
    if moved:
        raise StalePlanError(moved)


def apply_plan(
    plan: Plan,
    keystore: Keystore,
    audit: AuditLog,
    on_step: Callable[[Step, int, int], None] | None = None,
) -> ApplyReport:
    """Apply ``plan`` exactly; raise StalePlanError before any write if the keystore moved."""
    report = ApplyReport()
    steps = steps_of(plan.changes)
    with keystore.writer(audit):
        check_not_stale(plan, keystore)
        for index, step in enumerate(steps, start=1):
            try:
                _run(step, keystore, audit)
            except Js7CertCtlError as exc:
                raise ApplyError(_failure(report, steps, step, str(exc))) from None
            except OSError as exc:
                raise ApplyError(
                    _failure(report, steps, step, f"{type(exc).__name__}: {exc}")
                ) from None
            report.done.append(step)
            if step.kind == "delete":
                before = step.change.before
                if before is not None and before.job_resource_folder:
                    folder = before.job_resource_folder.rstrip("/")
                    report.left_behind.append(f"{folder}/{step.alias}")
                else:
                    report.left_behind.append(step.alias)
            if on_step is not None:
                on_step(step, index, len(steps))
    _verify(plan, keystore)
    return report


def _run(step: Step, keystore: Keystore, audit: AuditLog) -> None:
    if step.kind == "store":
        after = step.change.after
        assert after is not None
        keystore.store(
            after.alias, after.certificate, after.private_key_path, after.job_resource_folder, audit
        )
    elif step.kind == "assign":
        assert step.agent is not None
        keystore.add_assignment(step.alias, step.agent)
    elif step.kind == "unassign":
        assert step.agent is not None
        keystore.remove_assignment(step.alias, step.agent)
    else:
        keystore.delete(step.alias, audit)


_PRESENT_TENSE = (
    ("created ", "create "),
    ("updated ", "update "),
    ("assigned ", "assign "),
    ("removed ", "remove "),
    ("deleted ", "delete "),
)


def _failure(report: ApplyReport, steps: list[Step], failed: Step, reason: str) -> str:
    done = [s.describe() for s in report.done]
    rest = [s.describe() for s in steps[len(report.done) :]]
    what = failed.describe()  # "assigned x to Agent y" -> "assign x to Agent y", ...
    for past, present in _PRESENT_TENSE:
        if what.startswith(past):
            what = present + what[len(past) :]
            break
    lines = [f"apply stopped: {what} failed: {reason}"]
    lines.append(f"Applied ({len(done)}): " + ("; ".join(done) if done else "nothing"))
    lines.append(f"Not applied ({len(rest)}): " + "; ".join(rest))
    lines.append("Run `js7certctl plan` to see what remains.")
    return "\n  ".join(lines)


def _verify(plan: Plan, keystore: Keystore) -> None:
    """After a complete apply the planned aliases must match their desired state."""
    live = keystore.list_entries()
    desired = [c.after for c in plan.changes if c.after is not None]
    deleted = {c.alias for c in plan.changes if c.action is Action.DELETE}
    deleted |= {c.renamed_from for c in plan.changes if c.renamed_from is not None}
    planned = {c.alias for c in plan.changes} | deleted
    relevant = [e for e in live if e.alias in planned]
    result = diff(desired, relevant, plan.guards.policy(), allow_mass_delete=True)
    wrong = [c.alias for c in result.actionable if c.alias in planned]
    still_there = sorted(deleted & {e.alias for e in live})
    wrong = sorted(set(wrong) | set(still_there))
    if wrong:
        raise ApplyError(
            "apply finished, but the keystore does not match the plan for: "
            + ", ".join(wrong)
            + ". Run `js7certctl plan` to see the difference."
        )
