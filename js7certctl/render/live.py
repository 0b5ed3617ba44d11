"""The live keystore as a table or JSON (`list`). Certificate text is never shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from js7certctl import certs
from js7certctl.model import LiveEntry, TargetIdentity
from js7certctl.render.common import dumps, facts_json, plural


def render_text(entries: list[LiveEntry], identity: TargetIdentity, now: datetime) -> str:
    lines = [
        f"Target {identity.name} ({identity.backend}: {identity.location}): "
        f"{plural(len(entries), 'alias')}."
    ]
    for entry in entries:
        facts = certs.live_facts(entry.certificate)
        lines.append(f"  {entry.alias}")
        lines.append(
            "      certificate:       "
            + (certs.describe(facts, now) if facts else "(not a readable certificate)")
        )
        lines.append(f"      privateKeyPath:    {entry.private_key_path or '(none)'}")
        lines.append(f"      jobResourceFolder: {entry.job_resource_folder or '(unknown)'}")
        agents = "(unknown)" if entry.agents is None else ", ".join(entry.agents) or "(none)"
        lines.append(f"      agents:            {agents}")
    return "\n".join(lines) + "\n"


def render_json(entries: list[LiveEntry], identity: TargetIdentity, now: datetime) -> str:
    items: list[dict[str, Any]] = []
    for entry in entries:
        facts = certs.live_facts(entry.certificate)
        items.append(
            {
                "alias": entry.alias,
                "privateKeyPath": entry.private_key_path,
                "jobResourceFolder": entry.job_resource_folder,
                "agents": list(entry.agents) if entry.agents is not None else None,
                "facts": facts_json(facts, now) if facts else None,
            }
        )
    return dumps(
        {
            "target": {
                "name": identity.name,
                "backend": identity.backend,
                "location": identity.location,
            },
            "entries": items,
        }
    )
