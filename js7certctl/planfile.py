"""Plans: what they were computed against, their JSON form, and the live-keystore fingerprint.

A saved plan holds the complete desired entries of every change (certificates are public), the
target's identity and connection settings (never credentials), the guard flags it was made with,
and one digest per live alias in scope. It never holds the text of a live certificate (JOC may hold
garbage or even a private key there): only parsed facts and fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from js7certctl import __version__
from js7certctl.config import Policy
from js7certctl.errors import PlanFileError
from js7certctl.model import (
    Action,
    CertFacts,
    Change,
    DesiredCert,
    LiveEntry,
    ManifestChange,
    Origin,
    Problem,
    Severity,
    TargetIdentity,
)
from js7certctl.secrets import BlastRadius, BlastReport, ObjectRef
from js7certctl.source import SourceInfo

FORMAT_VERSION = 1
PLAN_KIND = "js7certctl-plan"
MAX_PLAN_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Guards:
    """The policy and flags a plan was made with (recorded, and used again by apply)."""

    scope: tuple[str, ...] = ("*",)
    protect: tuple[str, ...] = ()
    prune: bool = True
    max_deletes: int = 10
    allow_mass_delete: bool = False
    allow_referenced_delete: bool = False  # deletes of aliases JS7 objects still reference

    @classmethod
    def from_policy(
        cls, policy: Policy, *, allow_mass_delete: bool, allow_referenced_delete: bool = False
    ) -> Guards:
        return cls(
            scope=policy.scope,
            protect=policy.protect,
            prune=policy.prune,
            max_deletes=policy.max_deletes,
            allow_mass_delete=allow_mass_delete,
            allow_referenced_delete=allow_referenced_delete,
        )

    def policy(self) -> Policy:
        return Policy(
            scope=self.scope, protect=self.protect, prune=self.prune, max_deletes=self.max_deletes
        )


@dataclass(slots=True)
class Plan:
    source: SourceInfo
    target: TargetIdentity
    connection: dict[str, str]  # non-secret settings to reach the target (url, caBundle, ...)
    guards: Guards
    changes: list[Change]  # actionable changes only, in alias order
    unchanged: int  # aliases in scope that need nothing
    live_fingerprint: dict[str, str]  # alias -> digest of the live entry (in scope)
    warnings: list[Problem] = field(default_factory=list)  # health warnings of desired entries
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    tool_version: str = __version__
    base: SourceInfo | None = None  # with `plan --base REV`: the revision compared against
    manifest_changes: list[ManifestChange] | None = None  # what the PR changes in the manifests
    # What in the repository uses the Job Resources of updated, deleted and renamed aliases
    # (None when the plan has none of those, so nothing was scanned).
    blast_radius: BlastReport | None = None

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def empty(self) -> bool:
        return not self.changes


# What json.dumps(..., separators=(",", ":")) builds on every call, made once.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def entry_digest(entry: LiveEntry) -> str:
    """One digest over everything apply could change of an alias (certificate text byte for
    byte, private key path, Job Resource folder, Agent assignments)."""
    blob = _COMPACT_JSON.encode(
        [
            hashlib.sha256(entry.certificate.encode("utf-8", "surrogateescape")).hexdigest(),
            entry.private_key_path,
            entry.job_resource_folder,
            list(entry.agents) if entry.agents is not None else None,
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def live_fingerprint(live: list[LiveEntry], policy: Policy) -> dict[str, str]:
    return {e.alias: entry_digest(e) for e in live if policy.in_scope(e.alias)}


def changed_aliases(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return sorted(a for a in old.keys() | new.keys() if old.get(a) != new.get(a))


# ----------------------------------------------------------------------------- JSON form


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def facts_to_json(facts: CertFacts) -> dict[str, Any]:
    return {
        "kind": facts.kind,
        "keyType": facts.key_type,
        "keySize": facts.key_size,
        "fingerprint": facts.fingerprint,
        "subject": facts.subject,
        "issuer": facts.issuer,
        "serial": facts.serial,
        "curve": facts.curve,
        "notBefore": _dt(facts.not_before),
        "notAfter": _dt(facts.not_after),
        "signatureHash": facts.signature_hash,
    }


def facts_from_json(data: dict[str, Any]) -> CertFacts:
    return CertFacts(
        kind=str(data["kind"]),
        key_type=str(data["keyType"]),
        key_size=int(data["keySize"]),
        fingerprint=str(data["fingerprint"]),
        subject=data.get("subject"),
        issuer=data.get("issuer"),
        serial=data.get("serial"),
        curve=data.get("curve"),
        not_before=_parse_dt(data.get("notBefore")),
        not_after=_parse_dt(data.get("notAfter")),
        signature_hash=data.get("signatureHash"),
    )


def desired_to_json(cert: DesiredCert) -> dict[str, Any]:
    return {
        "alias": cert.alias,
        "certificate": cert.certificate,
        "privateKeyPath": cert.private_key_path,
        "jobResourceFolder": cert.job_resource_folder,
        "agents": list(cert.agents),
        "facts": facts_to_json(cert.facts),
        "origin": {"path": cert.origin.path, "line": cert.origin.line},
        "previousAliases": list(cert.previous_aliases),
        "agentsManaged": cert.agents_managed,
    }


def desired_from_json(data: dict[str, Any]) -> DesiredCert:
    origin = data.get("origin") or {}
    return DesiredCert(
        alias=str(data["alias"]),
        certificate=str(data["certificate"]),
        private_key_path=data.get("privateKeyPath"),
        job_resource_folder=str(data["jobResourceFolder"]),
        agents=tuple(str(a) for a in data.get("agents", [])),
        facts=facts_from_json(data["facts"]),
        origin=Origin(path=str(origin.get("path", "")), line=int(origin.get("line", 1))),
        previous_aliases=tuple(str(a) for a in data.get("previousAliases", [])),
        agents_managed=bool(data.get("agentsManaged", True)),
    )


def live_to_json(entry: LiveEntry) -> dict[str, Any]:
    # The certificate text is left out on purpose (see the module docstring).
    return {
        "alias": entry.alias,
        "privateKeyPath": entry.private_key_path,
        "jobResourceFolder": entry.job_resource_folder,
        "agents": list(entry.agents) if entry.agents is not None else None,
    }


def live_from_json(data: dict[str, Any]) -> LiveEntry:
    agents = data.get("agents")
    return LiveEntry(
        alias=str(data["alias"]),
        certificate="",
        private_key_path=data.get("privateKeyPath"),
        job_resource_folder=data.get("jobResourceFolder"),
        agents=tuple(str(a) for a in agents) if agents is not None else None,
    )


def change_to_json(change: Change) -> dict[str, Any]:
    return {
        "alias": change.alias,
        "action": str(change.action),
        "fields": list(change.fields),
        "agentsAdd": list(change.agents_add),
        "agentsRemove": list(change.agents_remove),
        "reasons": list(change.reasons),
        "before": live_to_json(change.before) if change.before is not None else None,
        "beforeFacts": facts_to_json(change.before_facts) if change.before_facts else None,
        "after": desired_to_json(change.after) if change.after is not None else None,
        "renamedFrom": change.renamed_from,
    }


def change_from_json(data: dict[str, Any]) -> Change:
    return Change(
        alias=str(data["alias"]),
        action=Action(data["action"]),
        before=live_from_json(data["before"]) if data.get("before") else None,
        after=desired_from_json(data["after"]) if data.get("after") else None,
        fields=tuple(data.get("fields", [])),
        agents_add=tuple(data.get("agentsAdd", [])),
        agents_remove=tuple(data.get("agentsRemove", [])),
        reasons=tuple(data.get("reasons", [])),
        before_facts=facts_from_json(data["beforeFacts"]) if data.get("beforeFacts") else None,
        renamed_from=data.get("renamedFrom"),
    )


def problem_to_json(problem: Problem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "line": problem.line,
        "column": problem.column,
        "severity": str(problem.severity),
        "rule": problem.rule,
        "message": problem.message,
    }


def source_to_json(info: SourceInfo) -> dict[str, Any]:
    return {
        "repository": info.repository,
        "ref": info.ref,
        "revision": info.revision,
        "dirty": info.dirty,
        "base": info.base,
    }


def source_from_json(src: dict[str, Any]) -> SourceInfo:
    return SourceInfo(
        repository=src.get("repository"),
        revision=src.get("revision"),
        ref=src.get("ref"),
        dirty=bool(src.get("dirty")),
        base=str(src.get("base") or ""),
    )


def blast_to_json(report: BlastReport) -> dict[str, Any]:
    return {
        "inventoryObjects": report.inventory_objects,
        "encryptedValues": report.values,
        "aliases": {
            alias: {
                "jobResource": radius.job_resource,
                "encryptedValues": radius.values,
                "references": [
                    {
                        "kind": ref.kind,
                        "name": ref.name,
                        "job": ref.job,
                        "file": ref.file,
                        "line": ref.line,
                    }
                    for ref in radius.references
                ],
            }
            for alias, radius in sorted(report.by_alias.items())
        },
    }


def blast_from_json(data: dict[str, Any]) -> BlastReport:
    return BlastReport(
        inventory_objects=int(data["inventoryObjects"]),
        values=int(data["encryptedValues"]),
        by_alias={
            str(alias): BlastRadius(
                job_resource=str(item["jobResource"]),
                references=tuple(
                    ObjectRef(
                        kind=str(ref["kind"]),
                        name=str(ref["name"]),
                        file=str(ref["file"]),
                        line=int(ref["line"]),
                        job=str(ref["job"]) if ref.get("job") is not None else None,
                    )
                    for ref in item["references"]
                ),
                values=int(item["encryptedValues"]),
            )
            for alias, item in data["aliases"].items()
        },
    )


def plan_to_json(plan: Plan) -> dict[str, Any]:
    data = _plan_to_json(plan)
    if plan.blast_radius is not None:
        data["blastRadius"] = blast_to_json(plan.blast_radius)
    if plan.base is not None:
        data["pullRequest"] = {
            "base": source_to_json(plan.base),
            "manifestChanges": [
                {"alias": m.alias, "kind": m.kind, "fields": list(m.fields), "path": m.path}
                for m in plan.manifest_changes or []
            ],
        }
    return data


def _plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "kind": PLAN_KIND,
        "format_version": FORMAT_VERSION,
        "tool_version": plan.tool_version,
        "created": plan.created.isoformat(),
        "source": source_to_json(plan.source),
        "target": {
            "name": plan.target.name,
            "backend": plan.target.backend,
            "location": plan.target.location,
            "connection": plan.connection,
        },
        "guards": {
            "scope": list(plan.guards.scope),
            "protect": list(plan.guards.protect),
            "prune": plan.guards.prune,
            "maxDeletes": plan.guards.max_deletes,
            "allowMassDelete": plan.guards.allow_mass_delete,
            "allowReferencedDelete": plan.guards.allow_referenced_delete,
        },
        "summary": {
            "add": plan.count(Action.CREATE),
            "change": plan.count(Action.UPDATE),
            "delete": plan.count(Action.DELETE),
            "rename": plan.count(Action.RENAME),
            "unchanged": plan.unchanged,
        },
        "changes": [change_to_json(c) for c in plan.changes],
        "warnings": [problem_to_json(p) for p in plan.warnings],
        "live_fingerprint": {
            "algorithm": "sha256",
            "entries": dict(sorted(plan.live_fingerprint.items())),
        },
    }


def plan_from_json(data: Any, name: str) -> Plan:
    if not isinstance(data, dict) or data.get("kind") != PLAN_KIND:
        raise PlanFileError(f"{name} is not a js7certctl plan file")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"{name} has format_version {version!r}, but this js7certctl ({__version__}) reads "
            f"version {FORMAT_VERSION} only",
            hint="Make the plan again with this version of js7certctl.",
        )
    plan = _plan_from_json(data, name)
    _check_changes(plan.changes, name)
    return plan


def _check_changes(changes: list[Change], name: str) -> None:
    """Refuse a plan whose entries could not have come from valid manifests (a damaged or edited
    file): apply sends what the plan holds, so it must never send a private key, a bundle, a
    certificate other than the one the plan shows, or an alias JS7 cannot use."""
    from js7certctl.certs import parse_certificate_text
    from js7certctl.manifest import alias_problem

    def refuse(reason: str) -> PlanFileError:
        return PlanFileError(
            f"{name} is damaged or was edited: {reason}; nothing was changed",
            hint="Make the plan again with `js7certctl plan --out FILE`.",
        )

    for change in changes:
        for alias in (change.alias, change.renamed_from):
            if alias is not None and alias_problem(alias) is not None:
                raise refuse(f"the alias {alias!r} breaks JS7's object-name rules")
        after = change.after
        if after is None:
            continue
        if after.alias != change.alias:
            raise refuse(f"the change of alias {change.alias!r} holds the entry of {after.alias!r}")
        parsed, findings = parse_certificate_text(after.certificate, source="its certificate")
        if any(f.rule == "private-key" for f in findings):
            raise refuse(f"the certificate of alias {change.alias!r} holds a private key")
        if parsed is None or parsed.pem != after.certificate:
            raise refuse(
                f"the certificate of alias {change.alias!r} is not exactly one certificate or "
                "public key"
            )
        if parsed.facts.fingerprint != after.facts.fingerprint:
            raise refuse(
                f"the certificate of alias {change.alias!r} does not match the fingerprint the "
                f"plan shows ({after.facts.short_fingerprint()})"
            )
        if not after.job_resource_folder.startswith("/"):
            raise refuse(f"the Job Resource folder of alias {change.alias!r} is not absolute")


def _plan_from_json(data: dict[str, Any], name: str) -> Plan:
    try:
        src = data["source"]
        tgt = data["target"]
        guards = data["guards"]
        pull = data.get("pullRequest")
        return Plan(
            base=source_from_json(pull["base"]) if pull else None,
            manifest_changes=[
                ManifestChange(
                    str(m["alias"]), str(m["kind"]), tuple(m.get("fields", [])), str(m["path"])
                )
                for m in pull["manifestChanges"]
            ]
            if pull
            else None,
            source=source_from_json(src),
            target=TargetIdentity(
                name=str(tgt["name"]), backend=str(tgt["backend"]), location=str(tgt["location"])
            ),
            connection={str(k): str(v) for k, v in (tgt.get("connection") or {}).items()},
            guards=Guards(
                scope=tuple(str(s) for s in guards["scope"]),
                protect=tuple(str(s) for s in guards["protect"]),
                prune=bool(guards["prune"]),
                max_deletes=int(guards["maxDeletes"]),
                allow_mass_delete=bool(guards["allowMassDelete"]),
                allow_referenced_delete=bool(guards.get("allowReferencedDelete", False)),
            ),
            changes=[change_from_json(c) for c in data["changes"]],
            unchanged=int(data["summary"]["unchanged"]),
            live_fingerprint={
                str(k): str(v) for k, v in data["live_fingerprint"]["entries"].items()
            },
            warnings=[
                Problem(
                    str(p["path"]),
                    int(p["line"]),
                    int(p["column"]),
                    Severity(p["severity"]),
                    str(p["rule"]),
                    str(p["message"]),
                )
                for p in data.get("warnings", [])
            ],
            created=datetime.fromisoformat(data["created"]),
            tool_version=str(data.get("tool_version", "")),
            blast_radius=blast_from_json(data["blastRadius"]) if data.get("blastRadius") else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanFileError(
            f"{name} is damaged or incomplete ({type(exc).__name__}: {exc}); "
            "make the plan again with `js7certctl plan --out FILE`"
        ) from None


def write_plan(plan: Plan, path: Path) -> None:
    """Write atomically, readable by the owner only (0600)."""
    text = json.dumps(plan_to_json(plan), indent=2, ensure_ascii=False) + "\n"
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise PlanFileError(f"cannot save the plan to {path}: it is a folder; name a file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise PlanFileError(
            f"cannot save the plan to {path}: {exc.strerror or exc} (in {folder})",
            hint="Name a file in an existing folder that you may write to.",
        ) from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise PlanFileError(f"cannot save the plan to {path}: {exc.strerror or exc}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_plan(path: Path) -> Plan:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanFileError(f"{name} is {size} bytes, too large to be a plan file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanFileError(f"the plan file {name} does not exist") from None
    except IsADirectoryError:
        raise PlanFileError(f"{name} is a folder, not a plan file") from None
    except PermissionError:
        raise PlanFileError(f"the plan file {name} cannot be read (permission denied)") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PlanFileError(f"{name} is not a plan file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"{name}:{exc.lineno}:{exc.colno}: the plan file is damaged or truncated ({exc.msg})",
            hint="Make the plan again with `js7certctl plan --out FILE`.",
        ) from None
    return plan_from_json(data, name)
