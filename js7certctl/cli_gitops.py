"""Commands for adopting a keystore and watching it: `import`, `drift` (registered on the app)."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Annotated

import typer

from js7certctl.cli import (
    ConfigOpt,
    DebugOpt,
    InsecureOpt,
    NoColorOpt,
    QuietOpt,
    RepoOpt,
    ReportFormat,
    TargetOpt,
    _backend_options,
    _exit,
    _now,
    app,
    make_ui,
)
from js7certctl.errors import EXIT_ERROR, Js7CertCtlError, SourceError, UsageError


@app.command(
    name="import",
    epilog="Examples: js7certctl import --target prod; js7certctl import --alias agent-001",
)
def import_(
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    alias: Annotated[
        list[str] | None,
        typer.Option("--alias", "-a", help="Import only this alias (repeatable)."),
    ] = None,
    insecure: InsecureOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a manifest for every live alias in scope that has none, to adopt a keystore.

    Each goes to `<alias>.yaml` in the first folder of `manifests`, with the certificate inline,
    its private key path, Job Resource folder and Agent assignments, so that the next plan is
    empty. Never overwrites a file. Exit 1 when any alias could not be imported.
    """
    from js7certctl import gitops
    from js7certctl.planning import open_target
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    workspace = open_workspace(repo=repo, config_file=config)
    chosen = workspace.config.target(target)
    policy = workspace.config.policy_for(chosen)
    try:
        loaded = workspace.load(chosen)
    except SourceError:
        existing: set[str] = set()  # no manifests yet: a fresh adoption
    else:
        if any(p.rule != "manifests-path" for p in loaded.errors):
            raise Js7CertCtlError(
                "the manifests have errors; fix them first (`js7certctl validate`), so that "
                "import knows which aliases already have one"
            )
        existing = {c.alias for c in loaded.certs}
    keystore = open_target(workspace, chosen, _backend_options(ui, insecure=insecure))
    try:
        live = keystore.list_entries()
    finally:
        keystore.close()
    candidates = [e for e in live if policy.in_scope(e.alias) and e.alias not in existing]
    if alias:
        wanted = set(alias)
        known = {e.alias for e in live}
        unknown = sorted(wanted - known)
        if unknown:
            raise UsageError(
                f"no such alias in target {chosen.name}: {', '.join(unknown)}",
                hint="`js7certctl list` shows the live aliases.",
            )
        managed = sorted(wanted & existing)
        if managed:
            ui.info(f"Already in the manifests (left alone): {', '.join(managed)}")
        candidates = [e for e in candidates if e.alias in wanted]
    entries = workspace.config.manifests_for(chosen)
    first = posixpath.normpath(posixpath.join(workspace.base, entries[0]))
    folder_rel = posixpath.dirname(first) if first.endswith((".yaml", ".yml")) else first
    folder = workspace.location.root / folder_rel if folder_rel != "." else workspace.location.root
    now = _now()
    written: list[str] = []
    failed = 0
    target_file: Path
    for entry in candidates:
        made = gitops.manifest_for(
            entry,
            default_folder=workspace.config.job_resource_folder_for(chosen),
            target=chosen.name,
            now=now,
        )
        if isinstance(made, gitops.Refused):
            ui.warn(f"{made.alias}: not imported: {made.reason}")
            failed += 1
            continue
        target_file = folder / f"{made.alias}.yaml"
        shown = _rel(target_file, workspace.location.root)
        if target_file.exists():
            ui.warn(f"{made.alias}: not imported: {shown} exists")
            failed += 1
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with open(target_file, "x", encoding="utf-8") as handle:
            handle.write(made.text)
        written.append(shown)
    for shown in written:
        ui.result(f"wrote {shown}\n")
    if written:
        ui.info(
            f"Imported {len(written)} alias(es) from target {chosen.name}. Review and commit the "
            "manifests; `js7certctl plan` should now show no changes for them."
        )
    elif not failed:
        ui.info(f"Nothing to import: every live alias in scope of {chosen.name} has a manifest.")
    if failed:
        _exit(EXIT_ERROR)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@app.command(
    epilog="Example (a scheduled job): js7certctl drift --target prod --ref origin/main "
    "--format json",
)
def drift(
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: Annotated[
        str,
        typer.Option(
            "--ref", help="The revision the keystore should match (the working tree is never read)."
        ),
    ] = "HEAD",
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="Text, or JSON for alerting.")
    ] = ReportFormat.text,
    insecure: InsecureOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Report every difference between the live keystore and Git as a change made outside Git.

    Exit 0 when there is no drift, 2 when there is, 1 on an error.
    """
    from js7certctl import gitops
    from js7certctl.planfile import source_to_json
    from js7certctl.planning import open_target
    from js7certctl.render.common import dumps
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    workspace = open_workspace(repo=repo, config_file=config, ref=ref)
    chosen = workspace.config.target(target)
    loaded = workspace.load_valid(chosen)
    keystore = open_target(workspace, chosen, _backend_options(ui, insecure=insecure))
    try:
        live = keystore.list_entries()
        identity = keystore.identity
    finally:
        keystore.close()
    report = gitops.find_drift(loaded.certs, live, workspace.config.policy_for(chosen))
    info = workspace.source.info
    if fmt is ReportFormat.json:
        ui.result(
            dumps(
                {
                    "target": {
                        "name": identity.name,
                        "backend": identity.backend,
                        "location": identity.location,
                    },
                    "source": source_to_json(info),
                    "drift": report.drifted,
                    "count": len(report.items),
                    "items": [
                        {
                            "alias": d.alias,
                            "kind": d.kind,
                            "fields": list(d.fields),
                            "details": list(d.details),
                            "description": d.describe(),
                        }
                        for d in report.items
                    ],
                }
            )
        )
    elif report.drifted:
        lines = [
            f"Drift: target {identity.name} differs from the manifests at {info.describe()} "
            f"in {len(report.items)} alias(es):"
        ]
        for item in report.items:
            lines.append(f"  {item.alias}: {item.describe()}")
            lines.extend(f"      {detail}" for detail in item.details)
        ui.result("\n".join(lines) + "\n")
    else:
        ui.result(f"No drift: target {identity.name} matches the manifests at {info.describe()}.\n")
    if report.drifted:
        _exit(2)
