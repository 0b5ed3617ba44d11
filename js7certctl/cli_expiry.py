"""`js7certctl expiry`: certificates by days left, for people, alerting and node exporters."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from js7certctl.cli import (
    ConfigOpt,
    DebugOpt,
    InsecureOpt,
    NoColorOpt,
    QuietOpt,
    RefOpt,
    RepoOpt,
    TargetOpt,
    _backend_options,
    _exit,
    _now,
    app,
    make_ui,
)
from js7certctl.model import CertFacts


class ExpiryFormat(StrEnum):
    text = "text"
    json = "json"
    prometheus = "prometheus"


@dataclass(frozen=True, slots=True)
class Row:
    alias: str
    source: str  # "manifest" or "live"
    facts: CertFacts | None  # None: the live text is not a readable certificate
    where: str  # manifest path, or the target's location

    def seconds_left(self, now: datetime) -> float | None:
        if self.facts is None or self.facts.not_after is None:
            return None
        return (self.facts.not_after - now).total_seconds()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_prometheus(rows: list[Row], target: str, now: datetime) -> str:
    lines = [
        "# HELP js7certctl_certificate_expiry_seconds Seconds until the certificate expires "
        "(negative once expired).",
        "# TYPE js7certctl_certificate_expiry_seconds gauge",
    ]
    for row in rows:
        left = row.seconds_left(now)
        if left is None:
            continue
        lines.append(
            f'js7certctl_certificate_expiry_seconds{{alias="{_label(row.alias)}",'
            f'target="{_label(target)}",source="{row.source}"}} {left:.0f}'
        )
    lines += [
        "# HELP js7certctl_certificate_not_after_timestamp_seconds When the certificate expires "
        "(Unix time).",
        "# TYPE js7certctl_certificate_not_after_timestamp_seconds gauge",
    ]
    for row in rows:
        if row.facts is None or row.facts.not_after is None:
            continue
        lines.append(
            f'js7certctl_certificate_not_after_timestamp_seconds{{alias="{_label(row.alias)}",'
            f'target="{_label(target)}",source="{row.source}"}} '
            f"{row.facts.not_after.timestamp():.0f}"
        )
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    """Write so that a reader (a node exporter) never sees half a file."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@app.command(
    epilog="Examples: js7certctl expiry --within 30; js7certctl expiry --target prod --format "
    "prometheus --out /var/lib/node_exporter/textfile/js7certctl.prom",
)
def expiry(
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    within: Annotated[
        int | None,
        typer.Option(
            "--within",
            help="Exit 2 when any certificate expires within DAYS (or has expired).",
            min=0,
        ),
    ] = None,
    fmt: Annotated[
        ExpiryFormat, typer.Option("--format", "-f", help="text, json or prometheus.")
    ] = ExpiryFormat.text,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the report to FILE (atomically) instead of stdout."
        ),
    ] = None,
    no_live: Annotated[
        bool, typer.Option("--no-live", help="Only the manifests; do not read the live keystore.")
    ] = False,
    insecure: InsecureOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List certificates, in the manifests and in the live keystore, by days left.

    Exit 0, or 2 with --within when a certificate expires within the window; 1 on an error.
    """
    from js7certctl import certs
    from js7certctl.planning import open_target
    from js7certctl.render.common import dumps, facts_json
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    workspace = open_workspace(repo=repo, config_file=config, ref=ref)
    chosen = workspace.config.target(target)
    now = _now()
    loaded = workspace.load(chosen, now=now)
    rows = [Row(c.alias, "manifest", c.facts, c.origin.path) for c in loaded.certs]
    if loaded.errors:
        ui.warn(
            f"{len(loaded.errors)} error(s) in the manifests; those manifests are not listed "
            "(run `js7certctl validate`)"
        )
    if not no_live:
        keystore = open_target(workspace, chosen, _backend_options(ui, insecure=insecure))
        try:
            live = keystore.list_entries()
            location = keystore.identity.location
        finally:
            keystore.close()
        rows += [Row(e.alias, "live", certs.live_facts(e.certificate), location) for e in live]

    def order(row: Row) -> tuple[float, str, str]:
        left = row.seconds_left(now)
        return (left if left is not None else float("inf"), row.alias, row.source)

    rows.sort(key=order)
    window = within * 86400 if within is not None else None
    hits = [
        r
        for r in rows
        if window is not None and (left := r.seconds_left(now)) is not None and left < window
    ]
    if fmt is ExpiryFormat.prometheus:
        text = render_prometheus(rows, chosen.name, now)
    elif fmt is ExpiryFormat.json:
        text = dumps(
            {
                "target": chosen.name,
                "within": within,
                "expiring": [r.alias for r in hits],
                "certificates": [
                    {
                        "alias": r.alias,
                        "source": r.source,
                        "where": r.where,
                        "daysLeft": r.facts.days_left(now) if r.facts else None,
                        "notAfter": facts_json(r.facts, now)["notAfter"] if r.facts else None,
                        "inWindow": r in hits,
                    }
                    for r in rows
                ],
            }
        )
    else:
        lines = [f"Certificates of target {chosen.name} by days left:"]
        for r in rows:
            if r.facts is None or r.facts.not_after is None:
                when, days = "-", "unreadable" if r.facts is None else "no expiry"
            else:
                when = r.facts.not_after.date().isoformat()
                left = r.facts.days_left(now)
                days = (
                    f"expired {-left} days ago" if left is not None and left < 0 else f"{left} days"
                )
            mark = "  !" if r in hits else "   "
            lines.append(f"{mark} {days:>20}  {when:<10}  {r.alias:<30} {r.source:<8} {r.where}")
        if within is not None:
            lines.append(
                f"{len(hits)} certificate(s) expire within {within} days."
                if hits
                else f"None expires within {within} days."
            )
        text = "\n".join(lines) + "\n"
    if out is not None:
        _write_atomically(out, text)
        ui.info(f"Wrote {out}.")
    else:
        ui.result(text)
    if hits:
        _exit(2)
