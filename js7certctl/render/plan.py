"""Views of one plan: text for terminals, JSON for machines, Markdown for pull requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from js7certctl import certs
from js7certctl.model import (
    FIELD_AGENTS,
    FIELD_CERTIFICATE,
    FIELD_JOB_RESOURCE_FOLDER,
    FIELD_PRIVATE_KEY_PATH,
    Action,
    CertFacts,
    Change,
    Problem,
)
from js7certctl.planfile import Plan, plan_to_json
from js7certctl.render.common import Style, dumps, plain, plural

MARKDOWN_LIMIT = 60_000
_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.NOOP: " "}
_COLOUR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red", Action.NOOP: ""}


def summary_line(plan: Plan) -> str:
    return (
        f"Plan: {plan.count(Action.CREATE)} to add, {plan.count(Action.UPDATE)} to change, "
        f"{plan.count(Action.DELETE)} to delete."
    )


def where(plan: Plan) -> str:
    src = plan.source
    if src.ref is not None and src.revision:
        return f"{src.ref} ({src.revision[:12]})"
    if src.revision:
        return f"the working tree at {src.revision[:12]}" + (
            " with uncommitted changes" if src.dirty else ""
        )
    return "the working tree"


def no_changes_line(plan: Plan) -> str:
    return (
        f"No changes. The keystore of target {plan.target.name} matches the manifests at "
        f"{where(plan)}."
    )


def _key_path(value: str | None) -> str:
    return value if value else "(none)"


def _facts(facts: CertFacts | None, now: datetime) -> str:
    return certs.describe(facts, now) if facts is not None else "(unreadable certificate)"


def _warnings_by_alias(plan: Plan) -> dict[str, list[Problem]]:
    paths: dict[str, str] = {}
    for change in plan.changes:
        if change.after is not None:
            paths[change.after.origin.path] = change.alias
    grouped: dict[str, list[Problem]] = {}
    for problem in plan.warnings:
        alias = paths.get(problem.path)
        if alias is not None:
            grouped.setdefault(alias, []).append(problem)
    return grouped


def _field_lines(change: Change, now: datetime) -> list[tuple[str, str]]:
    """(field, text) pairs describing what changes."""
    rows: list[tuple[str, str]] = []
    after = change.after
    before = change.before
    if change.action is Action.CREATE and after is not None:
        rows.append(("certificate", _facts(after.facts, now)))
        rows.append(("privateKeyPath", _key_path(after.private_key_path)))
        rows.append(("jobResourceFolder", after.job_resource_folder))
        if after.agents:
            rows.append(("agents", ", ".join(f"+ {a}" for a in after.agents)))
        return rows
    if change.action is Action.DELETE and before is not None:
        rows.append(("certificate", _facts(change.before_facts, now)))
        rows.append(("privateKeyPath", _key_path(before.private_key_path)))
        folder = before.job_resource_folder
        resource = f"{folder.rstrip('/')}/{change.alias}" if folder else change.alias
        rows.append(("jobResource", f"{resource} stays behind in the inventory"))
        if before.agents:
            rows.append(("agents", ", ".join(f"- {a}" for a in before.agents)))
        return rows
    if after is None or before is None:
        return rows
    if FIELD_CERTIFICATE in change.fields:
        rows.append(("certificate", _facts(change.before_facts, now)))
        rows.append(("", "-> " + _facts(after.facts, now)))
    if FIELD_PRIVATE_KEY_PATH in change.fields:
        rows.append(
            (
                "privateKeyPath",
                f"{_key_path(before.private_key_path)} -> {_key_path(after.private_key_path)}",
            )
        )
    if FIELD_JOB_RESOURCE_FOLDER in change.fields:
        rows.append(
            ("jobResourceFolder", f"{before.job_resource_folder} -> {after.job_resource_folder}")
        )
    if FIELD_AGENTS in change.fields:
        parts = [f"+ {a}" for a in change.agents_add] + [f"- {a}" for a in change.agents_remove]
        rows.append(("agents", ", ".join(parts)))
    for reason in change.reasons:
        rows.append(("note", reason))
    return rows


def render_text(plan: Plan, now: datetime, style: Style = plain) -> str:
    lines: list[str] = []
    target = plan.target
    if plan.empty:
        return no_changes_line(plan) + "\n"
    lines.append(
        f"js7certctl will change target {target.name} ({target.backend}: {target.location}) "
        f"to match the manifests at {where(plan)}:"
    )
    lines.append("")
    warnings = _warnings_by_alias(plan)
    for change in plan.changes:
        head = f"  {_SYMBOL[change.action]} {change.alias}"
        notes = [w.message for w in warnings.get(change.alias, [])]
        head = style(head, _COLOUR[change.action])
        if notes:
            head += "  " + style("(warning: " + "; ".join(notes) + ")", "yellow")
        lines.append(head)
        for name, text in _field_lines(change, now):
            label = f"{name}:" if name else ""
            lines.append(f"      {label:<19}{text}")
    lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    return dumps(plan_to_json(plan))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(plan: Plan, now: datetime, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: headline, deletes first, a table, details, under ``limit``."""
    target = plan.target
    head = [f"### js7certctl plan for `{target.name}`", ""]
    if plan.empty:
        head.append(no_changes_line(plan))
        return "\n".join(head) + "\n"
    head.append(
        f"**{summary_line(plan)}** Source: {_md_escape(where(plan))}; "
        f"target: {target.backend} `{_md_escape(target.location)}`."
    )
    head.append("")
    deletes = [c for c in plan.changes if c.action is Action.DELETE]
    if deletes:
        head.append(
            f"> [!WARNING]\n> This plan **deletes {plural(len(deletes), 'alias')}**: "
            + ", ".join(f"`{c.alias}`" for c in deletes)
        )
        head.append("")
    warnings = _warnings_by_alias(plan)
    ordered = deletes + [c for c in plan.changes if c.action is not Action.DELETE]
    table = ["| | alias | action | changes | expires |", "|---|---|---|---|---|"]
    details: list[str] = []
    for change in ordered:
        facts = change.after.facts if change.after is not None else change.before_facts
        days = facts.days_left(now) if facts is not None else None
        expiry = (
            f"{facts.not_after.date()} ({days} days)"
            if facts is not None and facts.not_after is not None
            else "-"
        )
        changed = ", ".join(change.fields) if change.action is Action.UPDATE else "-"
        warn = " :warning:" if change.alias in warnings else ""
        table.append(
            f"| {_SYMBOL[change.action]} | `{_md_escape(change.alias)}`{warn} | {change.action} "
            f"| {_md_escape(changed)} | {expiry} |"
        )
        rows = _field_lines(change, now)
        body = "\n".join(f"    {name + ':' if name else '':<19}{text}" for name, text in rows)
        notes = "".join(
            f"\n\n:warning: {_md_escape(w.message)}" for w in warnings.get(change.alias, [])
        )
        details.append(
            f"<details><summary>{_SYMBOL[change.action]} {_md_escape(change.alias)} "
            f"({change.action})</summary>\n\n```\n{body}\n```{notes}\n</details>"
        )
    footer = ["", f"<sub>js7certctl {plan.tool_version}</sub>"]
    parts = [*head, *table, "", ""]
    out = "\n".join(parts)
    tail = "\n".join(footer) + "\n"
    note = (
        "\n**Output truncated**: the plan is too long for one comment; "
        "see the full plan (`js7certctl show PLANFILE`).\n"
    )
    if len(out) + len(tail) > limit:
        budget = limit - len(tail) - len(note) - len("\n".join(head)) - 2
        kept: list[str] = []
        for row in table:
            if len(row) + 1 > budget:
                break
            kept.append(row)
            budget -= len(row) + 1
        return "\n".join([*head, *kept]) + "\n" + note + tail
    for block in details:
        if len(out) + len(block) + 1 + len(tail) + len(note) > limit:
            return out + note + tail
        out += block + "\n"
    return out + tail


def render(plan: Plan, fmt: str, now: datetime, style: Style = plain) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan, now)
    return render_text(plan, now, style)


def summary_json(plan: Plan) -> dict[str, Any]:
    return {
        "add": plan.count(Action.CREATE),
        "change": plan.count(Action.UPDATE),
        "delete": plan.count(Action.DELETE),
    }
