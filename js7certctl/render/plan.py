"""Views of one plan: text for terminals, JSON for machines, Markdown for pull requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from js7certctl import certs
from js7certctl.errors import Js7CertCtlError
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
from js7certctl.secrets import INVENTORY_TYPES

MARKDOWN_LIMIT = 60_000
BLAST_REFERENCES_SHOWN = 20  # per alias, in the text and the details; the JSON has them all
_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.RENAME: ">",
    Action.NOOP: " ",
}
_COLOUR = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.RENAME: "cyan",
    Action.NOOP: "",
}


def summary_line(plan: Plan) -> str:
    renames = plan.count(Action.RENAME)
    return (
        f"Plan: {plan.count(Action.CREATE)} to add, {plan.count(Action.UPDATE)} to change, "
        f"{plan.count(Action.DELETE)} to delete" + (f", {renames} to rename." if renames else ".")
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
    """Health warnings attributed to the alias whose manifest document holds them."""
    starts: dict[str, list[tuple[int, str]]] = {}
    for change in plan.changes:
        if change.after is not None:
            starts.setdefault(change.after.origin.path, []).append(
                (change.after.origin.line, change.alias)
            )
    for spans in starts.values():
        spans.sort()
    grouped: dict[str, list[Problem]] = {}
    for problem in plan.warnings:
        owner = None
        for line, alias in starts.get(problem.path, ()):
            if line > problem.line:
                break
            owner = alias
        if owner is not None:
            grouped.setdefault(owner, []).append(problem)
    return grouped


_PR_SYMBOL = {"added": "+", "edited": "~", "removed": "-"}


def pr_lines(plan: Plan) -> list[str]:
    """What the pull request itself changes in the manifests (with `plan --base`)."""
    if plan.base is None:
        return []
    base = plan.base
    label = f"{base.ref} ({base.revision[:12]})" if base.ref and base.revision else "the base"
    changes = plan.manifest_changes or []
    lines = [f"Manifest changes since {label}:"]
    if not changes:
        lines.append("  (none)")
    for item in changes:
        detail = f": {', '.join(item.fields)}" if item.fields else ""
        lines.append(f"  {_PR_SYMBOL[item.kind]} {item.alias} ({item.kind}{detail}) in {item.path}")
    return lines


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
    if change.action is Action.RENAME and after is not None and before is not None:
        rows.append(
            ("renamedFrom", f"{change.renamed_from} (deleted after the new alias is stored)")
        )
        if (
            change.before_facts is None
            or change.before_facts.fingerprint != after.facts.fingerprint
        ):
            rows.append(("certificate", _facts(change.before_facts, now)))
            rows.append(("", "-> " + _facts(after.facts, now)))
        else:
            rows.append(("certificate", _facts(after.facts, now) + " (unchanged)"))
        if (before.private_key_path or None) != after.private_key_path:
            rows.append(
                (
                    "privateKeyPath",
                    f"{_key_path(before.private_key_path)} -> {_key_path(after.private_key_path)}",
                )
            )
        else:
            rows.append(("privateKeyPath", _key_path(after.private_key_path)))
        rows.append(("jobResourceFolder", after.job_resource_folder))
        if change.agents_add:
            rows.append(
                ("agents", ", ".join(f"+ {a}" for a in change.agents_add) + " (carried over)")
            )
        folder = before.job_resource_folder
        old = change.renamed_from or ""
        resource = f"{folder.rstrip('/')}/{old}" if folder else old
        rows.append(("jobResource", f"{resource} stays behind in the inventory"))
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


def _blast_rows(plan: Plan, change: Change) -> list[tuple[str, str]]:
    """(field, text) pairs: the JS7 objects using the alias's Job Resource, and its values."""
    report = plan.blast_radius
    radius = report.by_alias.get(change.alias) if report is not None and report.shown else None
    if radius is None:
        return []
    refs = radius.references
    rows: list[tuple[str, str]] = []
    if not refs:
        rows.append(("referencedBy", "no JS7 object in the repository"))
    for index, ref in enumerate(refs[:BLAST_REFERENCES_SHOWN]):
        rows.append(("referencedBy" if index == 0 else "", ref.describe()))
    if len(refs) > BLAST_REFERENCES_SHOWN:
        rows.append(("", f"and {len(refs) - BLAST_REFERENCES_SHOWN} more"))
    if change.action is Action.RENAME and refs:
        rows.append(
            (
                "note",
                f"these still name the Job Resource {radius.job_resource}; change them to "
                f"{change.alias}",
            )
        )
    rows.append(("encryptedValues", f"{radius.values} in the repository (known by reference)"))
    return rows


def _blast_scope(plan: Plan) -> str | None:
    report = plan.blast_radius
    if report is None or not report.shown:
        return None
    return (
        f"{plural(report.inventory_objects, 'JS7 inventory object')} and "
        f"{plural(report.values, 'enc: value')} in the repository"
    )


def blast_line(plan: Plan) -> str | None:
    """What the blast radius covered, or None when nothing was scanned or found."""
    scope = _blast_scope(plan)
    return f"Blast radius: {scope}." if scope is not None else None


def render_text(plan: Plan, now: datetime, style: Style = plain) -> str:
    lines: list[str] = []
    target = plan.target
    pull = pr_lines(plan)
    if pull:
        lines += [*pull, ""]
    if plan.empty:
        return "\n".join([*lines, no_changes_line(plan)]) + "\n"
    lines.append(
        f"js7certctl will change target {target.name} ({target.backend}: {target.location}) "
        f"to match the manifests at {where(plan)}:"
    )
    lines.append("")
    warnings = _warnings_by_alias(plan)
    for change in plan.changes:
        head = f"  {_SYMBOL[change.action]} {change.alias}"
        if change.renamed_from:
            head += f" (renamed from {change.renamed_from})"
        notes = [w.message for w in warnings.get(change.alias, [])]
        head = style(head, _COLOUR[change.action])
        if notes:
            head += "  " + style("(warning: " + "; ".join(notes) + ")", "yellow")
        lines.append(head)
        for name, text in _field_lines(change, now) + _blast_rows(plan, change):
            label = f"{name}:" if name else ""
            lines.append(f"      {label:<19}{text}")
    lines.append("")
    blast = blast_line(plan)
    if blast is not None:
        lines.append(blast)
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    return dumps(plan_to_json(plan))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_table_rows(plan: Plan, now: datetime, ordered: list[Change]) -> list[str]:
    warnings = _warnings_by_alias(plan)
    rows = []
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
        rows.append(
            f"| {_SYMBOL[change.action]} | `{_md_escape(change.alias)}`{warn} | {change.action} "
            f"| {_md_escape(changed)} | {expiry} |\n"
        )
    return rows


def _md_details(plan: Plan, now: datetime, ordered: list[Change]) -> list[str]:
    warnings = _warnings_by_alias(plan)
    blocks = []
    for change in ordered:
        rows = _field_lines(change, now) + _blast_rows(plan, change)
        body = "\n".join(f"    {name + ':' if name else '':<19}{text}" for name, text in rows)
        notes = "".join(
            f"\n\n:warning: {_md_escape(w.message)}" for w in warnings.get(change.alias, [])
        )
        blocks.append(
            f"<details><summary>{_SYMBOL[change.action]} {_md_escape(change.alias)} "
            f"({change.action})</summary>\n\n```\n{body}\n```{notes}\n</details>\n"
        )
    return blocks


def _md_pull_request(plan: Plan) -> list[str]:
    if plan.base is None:
        return []
    base = plan.base
    label = f"`{base.ref}` ({base.revision[:12]})" if base.ref and base.revision else "the base"
    changes = plan.manifest_changes or []
    blocks = [f"**What this pull request changes in the manifests** (since {label}):\n\n"]
    if not changes:
        return [*blocks, "No manifest changes.\n\n"]
    blocks.append("| | alias | change | file |\n|---|---|---|---|\n")
    for item in changes:
        what = item.kind + (f": {', '.join(item.fields)}" if item.fields else "")
        blocks.append(
            f"| {_PR_SYMBOL[item.kind]} | `{_md_escape(item.alias)}` | {_md_escape(what)} "
            f"| `{_md_escape(item.path)}` |\n"
        )
    blocks.append("\n")
    return blocks


def _md_blast(plan: Plan, ordered: list[Change]) -> list[str]:
    report = plan.blast_radius
    if report is None or not report.shown:
        return []
    rows = []
    for change in ordered:
        radius = report.by_alias.get(change.alias)
        if radius is None:
            continue
        names = [
            f"{INVENTORY_TYPES.get(ref.kind, ref.kind)} `{_md_escape(ref.name)}`"
            + (f" (job `{_md_escape(ref.job)}`)" if ref.job else "")
            for ref in radius.references
        ]
        shown = ", ".join(dict.fromkeys(names[:10])) or "none"
        if len(names) > 10:
            shown += f" and {len(names) - 10} more"
        rows.append(
            f"| `{_md_escape(change.alias)}` | `{_md_escape(radius.job_resource)}` | {shown} "
            f"| {radius.values} |\n"
        )
    if not rows:
        return []
    head = (
        f"**Blast radius** ({_md_escape(_blast_scope(plan) or '')}): "
        "the JS7 objects that use each alias's Job Resource, and the `enc:` values known to "
        "be encrypted for it.\n\n"
        "| alias | Job Resource | used by | `enc:` values |\n|---|---|---|---|\n"
    )
    return [head + "".join(rows) + "\n"]


def render_markdown(plan: Plan, now: datetime, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: headline, deletes first, tables, details; never over ``limit``.

    Blocks are added in order of importance; when the next one would not fit, the comment ends
    with a note saying it was truncated and where the full plan is.
    """
    target = plan.target
    counts = summary_line(plan).removeprefix("Plan: ").rstrip(".")
    title = f"### js7certctl plan for `{_md_escape(target.name)}`: " + (
        "no changes" if plan.empty else counts
    )
    header = [
        f"{title}\n\n",
        f"Source: {_md_escape(where(plan))} · target: {target.backend} "
        f"`{_md_escape(target.location)}`\n\n",
    ]
    deletes = [c for c in plan.changes if c.action is Action.DELETE]
    if deletes:
        radius = plan.blast_radius.by_alias if plan.blast_radius is not None else {}

        def used(alias: str) -> str:
            refs = radius[alias].references if alias in radius else ()
            return f" (still used by {plural(len(refs), 'JS7 object')})" if refs else ""

        shown = ", ".join(f"`{_md_escape(c.alias)}`{used(c.alias)}" for c in deletes[:50])
        more = f" and {len(deletes) - 50} more" if len(deletes) > 50 else ""
        header.append(
            f"> [!WARNING]\n> This plan **deletes {plural(len(deletes), 'alias')}**: "
            f"{shown}{more}\n\n"
        )
    blocks = _md_pull_request(plan)
    if plan.empty:
        blocks.append(no_changes_line(plan) + "\n")
    else:
        ordered = deletes + [c for c in plan.changes if c.action is not Action.DELETE]
        blocks.append("**What apply will do:**\n\n")
        blocks.append("| | alias | action | changes | expires |\n|---|---|---|---|---|\n")
        blocks += _md_table_rows(plan, now, ordered)
        blocks.append("\n")
        blocks += _md_blast(plan, ordered)
        blocks += _md_details(plan, now, ordered)
    footer = f"\n<sub>js7certctl {plan.tool_version}</sub>\n"
    note = (
        "\n> [!NOTE]\n> This comment was **truncated** to stay under "
        f"{limit:,} characters. The full plan: `js7certctl show PLANFILE` on the saved plan.\n"
    )
    out = "".join(header)
    for index, block in enumerate(blocks):
        rest = blocks[index + 1 :]
        reserve = len(footer) + (len(note) if rest else 0)
        if len(out) + len(block) + reserve > limit:
            return out + note + footer
        out += block
    return out + footer


def render_markdown_error(target: str, error: Exception) -> str:
    """A pull-request comment for a plan that failed (invalid manifests, policy, backend)."""
    from js7certctl.errors import ValidationFailed

    lines = [f"### js7certctl plan for `{_md_escape(target)}`: failed", ""]
    lines.append("> [!CAUTION]\n> The plan could not be made; nothing can be applied.")
    lines.append("")
    details = str(error)
    if isinstance(error, ValidationFailed):
        details = "\n".join(p.format() for p in error.problems) + "\n" + details
    if len(details) > MARKDOWN_LIMIT - 500:
        details = details[: MARKDOWN_LIMIT - 600] + "\n... (truncated)"
    lines += ["```", details.replace("```", "` ` `"), "```", ""]
    return "\n".join(lines)


def render_many(
    plans: list[Plan],
    failures: list[tuple[str, Js7CertCtlError]],
    fmt: str,
    now: datetime,
    style: Style = plain,
) -> str:
    """Several targets' plans in one report (`plan --all-targets`)."""
    if fmt == "json":
        return dumps(
            {
                "plans": [plan_to_json(p) for p in plans],
                "failures": [{"target": name, "message": str(exc)} for name, exc in failures],
            }
        )
    parts: list[str] = []
    budget = MARKDOWN_LIMIT // max(1, len(plans) + len(failures))
    for plan in plans:
        if fmt == "markdown":
            parts.append(render_markdown(plan, now, limit=budget))
        else:
            parts.append(f"== target {plan.target.name} ==\n" + render_text(plan, now, style))
    for name, exc in failures:
        if fmt == "markdown":
            parts.append(render_markdown_error(name, exc)[:budget])
        else:
            parts.append(f"== target {name} ==\nError: {exc}\n")
    return "\n".join(parts)


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
