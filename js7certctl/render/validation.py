"""The `validate` report: one line per alias with its health, then the problems."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from js7certctl import certs
from js7certctl.manifest import LoadResult
from js7certctl.model import Problem, Severity
from js7certctl.planfile import problem_to_json, source_to_json
from js7certctl.render.common import (
    Style,
    dumps,
    facts_json,
    plain,
    plural,
)
from js7certctl.source import SourceInfo


def _status(alias_problems: list[Problem]) -> str:
    if any(p.is_error for p in alias_problems):
        return "error"
    if alias_problems:
        return "warning"
    return "ok"


def _per_alias(result: LoadResult) -> dict[str, list[Problem]]:
    """Problems attributed to the alias whose document contains them."""
    grouped: dict[str, list[Problem]] = {cert.alias: [] for cert in result.certs}
    starts: dict[str, list[tuple[int, str]]] = {}
    for cert in result.certs:
        starts.setdefault(cert.origin.path, []).append((cert.origin.line, cert.alias))
    for spans in starts.values():
        spans.sort()
    for problem in result.problems:
        owner = None
        for line, alias in starts.get(problem.path, ()):
            if line > problem.line:
                break
            owner = alias
        if owner is not None:
            grouped[owner].append(problem)
    return grouped


def render_text(
    result: LoadResult, info: SourceInfo, target: str, now: datetime, style: Style = plain
) -> str:
    lines: list[str] = []
    where = info.describe()
    lines.append(
        f"Validated {plural(len(result.files), 'manifest file')} "
        f"({plural(len(result.certs), 'certificate')}) from {where} for target {target}."
    )
    grouped = _per_alias(result)
    width = max((len(c.alias) for c in result.certs), default=0)
    colours = {"ok": "green", "warning": "yellow", "error": "red"}
    for cert in result.certs:
        status = _status(grouped.get(cert.alias, []))
        label = style(f"{status:<7}", colours[status])
        lines.append(f"  {label} {cert.alias:<{width}}  {certs.describe(cert.facts, now)}")
    if result.problems:
        lines.append("")
        for problem in result.problems:
            colour = "red" if problem.severity is Severity.ERROR else "yellow"
            lines.append(style(problem.format(), colour))
    errors, warnings = len(result.errors), len(result.warnings)
    lines.append("")
    if errors:
        lines.append(
            style(f"Invalid: {plural(errors, 'error')}, {plural(warnings, 'warning')}.", "red")
        )
    else:
        lines.append(f"Valid: {plural(warnings, 'warning')}.")
    return "\n".join(lines) + "\n"


def render_json(result: LoadResult, info: SourceInfo, target: str, now: datetime) -> str:
    grouped = _per_alias(result)
    data: dict[str, Any] = {
        "valid": result.ok,
        "target": target,
        "source": source_to_json(info),
        "certificates": [
            {
                "alias": cert.alias,
                "path": cert.origin.path,
                "line": cert.origin.line,
                "certificateFile": cert.origin.cert_file,
                "privateKeyPath": cert.private_key_path,
                "jobResourceFolder": cert.job_resource_folder,
                "agents": list(cert.agents),
                "status": _status(grouped.get(cert.alias, [])),
                "facts": facts_json(cert.facts, now),
            }
            for cert in result.certs
        ],
        "problems": [problem_to_json(p) for p in result.problems],
        "summary": {
            "files": len(result.files),
            "certificates": len(result.certs),
            "errors": len(result.errors),
            "warnings": len(result.warnings),
        },
    }
    return dumps(data)


def render_github(result: LoadResult) -> str:
    """GitHub Actions workflow commands: one annotation per problem, then the summary."""
    from js7certctl.ci import github_annotation

    lines = [
        github_annotation(
            str(p.severity), p.path, p.line, p.column, f"js7certctl {p.rule}", p.message
        )
        for p in result.problems
    ]
    errors, warnings = len(result.errors), len(result.warnings)
    verdict = "Invalid" if errors else "Valid"
    lines.append(f"{verdict}: {plural(errors, 'error')}, {plural(warnings, 'warning')}.")
    return "\n".join(lines) + "\n"


def render_codeclimate(result: LoadResult) -> str:
    """GitLab's code-quality report (the Code Climate issue format), a JSON list."""
    import hashlib

    issues = []
    for p in result.problems:
        digest = hashlib.sha256(f"{p.path}:{p.line}:{p.rule}:{p.message}".encode()).hexdigest()
        issues.append(
            {
                "type": "issue",
                "check_name": f"js7certctl/{p.rule}",
                "description": p.message,
                "categories": ["Bug Risk" if p.is_error else "Style"],
                "severity": "major" if p.is_error else "minor",
                "fingerprint": digest,
                "location": {"path": p.path, "lines": {"begin": p.line}},
            }
        )
    return dumps(issues)
