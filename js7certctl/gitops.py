"""Adopting a live keystore into Git (`import`) and finding changes made outside Git (`drift`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from js7certctl import certs
from js7certctl.config import Policy
from js7certctl.diff import diff
from js7certctl.manifest import API_VERSION, KIND, alias_problem
from js7certctl.model import (
    FIELD_AGENTS,
    FIELD_CERTIFICATE,
    FIELD_JOB_RESOURCE_FOLDER,
    FIELD_PRIVATE_KEY_PATH,
    Action,
    Change,
    DesiredCert,
    LiveEntry,
)

_PLAIN = re.compile(r"^[A-Za-z0-9_./@][A-Za-z0-9_./@ -]*$")


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when unambiguous, else double-quoted (JSON is YAML)."""
    if (
        _PLAIN.match(value)
        and not value.endswith(" ")
        and value.lower()
        not in (
            "true",
            "false",
            "null",
            "yes",
            "no",
            "on",
            "off",
            "~",
        )
    ):
        try:
            float(value)
        except ValueError:
            return value
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Imported:
    alias: str
    text: str  # the manifest's YAML


@dataclass(frozen=True, slots=True)
class Refused:
    alias: str
    reason: str


def manifest_for(
    entry: LiveEntry, *, default_folder: str, target: str, now: datetime
) -> Imported | Refused:
    """The manifest that makes the next plan empty for this live entry, or why there is none."""
    why = alias_problem(entry.alias)
    if why:
        return Refused(entry.alias, f"{why}; rename it in JOC first")
    if certs.contains_private_key(entry.certificate):
        return Refused(
            entry.alias,
            "the live entry holds a private key beside its certificate; store the certificate "
            "alone in JOC (or with js7certctl apply) before importing it",
        )
    parsed, findings = certs.parse_certificate_text(entry.certificate, source=entry.alias)
    if parsed is None:
        reason = findings[0].message if findings else "it is not a certificate"
        return Refused(entry.alias, f"the live certificate cannot be used: {reason}")
    lines = [
        f"# Imported from target {target} on {now.date().isoformat()} by `js7certctl import`.",
        f"apiVersion: {API_VERSION}",
        f"kind: {KIND}",
        "metadata:",
        f"  alias: {yaml_scalar(entry.alias)}",
        "spec:",
        "  certificate: |",
        *(f"    {line}" for line in parsed.pem.strip().splitlines()),
    ]
    if entry.private_key_path:
        lines.append(f"  privateKeyPath: {yaml_scalar(entry.private_key_path)}")
    if entry.job_resource_folder and entry.job_resource_folder != default_folder:
        lines.append(f"  jobResourceFolder: {yaml_scalar(entry.job_resource_folder)}")
    if entry.agents:
        lines.append("  agents:")
        lines.extend(f"    - {yaml_scalar(agent)}" for agent in entry.agents)
    return Imported(entry.alias, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- drift

_KIND = {
    Action.CREATE: "missing",  # in Git, not in the keystore: removed by hand (or never applied)
    Action.DELETE: "unmanaged",  # in the keystore, not in Git: added by hand
    Action.UPDATE: "edited",  # both, but different: edited by hand
}


@dataclass(frozen=True, slots=True)
class Drift:
    alias: str
    kind: str  # "missing", "unmanaged", "edited"
    fields: tuple[str, ...] = ()
    details: tuple[str, ...] = ()  # one line per field: what Git says vs what the keystore holds

    def describe(self) -> str:
        if self.kind == "missing":
            return "in Git but not in the keystore (removed outside Git, or never applied)"
        if self.kind == "unmanaged":
            return "in the keystore but not in Git (added outside Git)"
        return "edited outside Git: " + ", ".join(self.fields)


@dataclass(slots=True)
class DriftReport:
    items: list[Drift] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.items)


def _details(change: Change) -> tuple[str, ...]:
    after, before = change.after, change.before
    if after is None or before is None:
        return ()
    lines = []
    for name in change.fields:
        if name == FIELD_CERTIFICATE:
            live = change.before_facts.short_fingerprint() if change.before_facts else "unreadable"
            lines.append(f"certificate: Git {after.facts.short_fingerprint()}, keystore {live}")
        elif name == FIELD_PRIVATE_KEY_PATH:
            lines.append(
                f"privateKeyPath: Git {after.private_key_path or '(none)'}, "
                f"keystore {before.private_key_path or '(none)'}"
            )
        elif name == FIELD_JOB_RESOURCE_FOLDER:
            lines.append(
                f"jobResourceFolder: Git {after.job_resource_folder}, "
                f"keystore {before.job_resource_folder}"
            )
        elif name == FIELD_AGENTS:
            parts = [f"{a} only in Git" for a in change.agents_add]
            parts += [f"{a} only in the keystore" for a in change.agents_remove]
            lines.append("agents: " + ", ".join(parts))
    return tuple(lines)


def find_drift(desired: list[DesiredCert], live: list[LiveEntry], policy: Policy) -> DriftReport:
    """Every difference between Git and the keystore, in the words of a change made outside Git.

    Guards do not apply: a protected alias added by hand is drift too."""
    relaxed = Policy(scope=policy.scope, prune=policy.prune, protect=(), max_deletes=len(live) + 1)
    result = diff(desired, live, relaxed, allow_mass_delete=True)
    return DriftReport(
        [
            Drift(
                c.alias, _KIND[c.action], c.fields if c.action is Action.UPDATE else (), _details(c)
            )
            for c in result.actionable
        ]
    )
