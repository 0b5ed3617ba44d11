"""Commands for the certificate lifecycle: `secrets scan` and `rotate` (registered on the app).

No plaintext is ever printed or written: `secrets scan --key` only tells which key opens a value,
and `rotate` re-encrypts each value in memory. Heavy imports stay inside the command functions.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from js7certctl.cli import (
    ConfigOpt,
    DebugOpt,
    NoColorOpt,
    QuietOpt,
    RefOpt,
    RepoOpt,
    ReportFormat,
    TargetOpt,
    Ui,
    app,
    make_ui,
)
from js7certctl.errors import UsageError

if TYPE_CHECKING:
    from js7certctl.envelope import PrivateKey
    from js7certctl.secrets import Attribution, EncValue

__all__ = ["rotate", "secrets_app", "secrets_scan"]

secrets_app = typer.Typer(
    name="secrets",
    help="Encrypted values in the repository: find them and tell which alias each is for.",
    epilog="Example: js7certctl secrets scan --format json",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(secrets_app, name="secrets")

_LIST_LIMIT = 50


def _parse_keys(given: list[str]) -> list[tuple[str, Path]]:
    from js7certctl.manifest import alias_problem

    keys: list[tuple[str, Path]] = []
    for item in given:
        alias, sep, file = item.partition("=")
        if not sep or not alias or not file:
            raise UsageError(f"--key takes ALIAS=FILE (the alias and its private key file): {item}")
        problem = alias_problem(alias)
        if problem:
            raise UsageError(f"--key {item}: {problem}.")
        if any(alias == seen for seen, _ in keys):
            raise UsageError(f"--key names the alias {alias!r} twice.")
        keys.append((alias, Path(file)))
    return keys


def _value_json(value: EncValue, attribution: Attribution) -> dict[str, Any]:
    return {
        "file": value.file,
        "line": value.line,
        "column": value.column,
        "path": value.path,
        "alias": attribution.alias,
        "how": attribution.how,
        "inferred": attribution.inferred,
        "candidates": list(attribution.candidates),
        "quoted": bool(value.quote),
        "valid": attribution.problem is None,
        "problem": attribution.problem,
    }


def _shown_list(lines: list[str]) -> list[str]:
    if len(lines) <= _LIST_LIMIT:
        return lines
    return [*lines[:_LIST_LIMIT], f"... and {len(lines) - _LIST_LIMIT} more"]


@secrets_app.command(
    "scan",
    epilog="Examples: js7certctl secrets scan; js7certctl secrets scan --format json; "
    "js7certctl secrets scan --key agent-payments=~/agent-keys/agent-payments.key",
)
def secrets_scan(
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            metavar="ALIAS=FILE",
            help="A private key and the alias it is for (repeatable): each value is attributed "
            "to the alias whose key opens it, and values no key opens are listed.",
        ),
    ] = None,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="Lines, or JSON.")
    ] = ReportFormat.text,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Find every `enc:` value in the repository's YAML and JSON files, and its alias.

    One line per value: `file:line key.path alias`. Without --key the alias is inferred from the
    JS7 inventory objects (the alias's Job Resource among the value's `jobResourceNames`), or `?`.
    Reads the working tree (or --ref), skipping dot-folders; never prints a plaintext.
    """
    from js7certctl import secrets
    from js7certctl.cli_crypto import load_private_key_file
    from js7certctl.envelope import KeyPasswordRequiredError
    from js7certctl.errors import SourceError
    from js7certctl.planfile import source_to_json
    from js7certctl.render.common import dumps
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    given = _parse_keys(key or [])
    workspace = open_workspace(repo=repo, config_file=config, ref=ref)
    chosen = workspace.config.target(target)
    try:
        desired = workspace.load(chosen).certs
    except SourceError:
        desired = []  # no manifests: infer from exported Job Resources only
    certificates = {c.alias: [c.certificate] for c in desired}
    public_keys_of = secrets.public_keys_from(certificates)
    keys: list[tuple[str, PrivateKey]] = []
    for alias, path in given:
        try:
            private = load_private_key_file(path, None, None)
        except KeyPasswordRequiredError:
            raise KeyPasswordRequiredError(
                f"the private key {path} is password-protected and there is no terminal to ask "
                "for its password.",
                hint="Run the scan on a terminal, or give the key as the Agents hold it "
                "(unencrypted, readable only by you).",
            ) from None
        known = public_keys_of(alias)
        if known:
            from js7certctl.envelope import key_matches

            if not key_matches(private, known[0]):
                ui.warn(
                    f"the key {path} does not belong to the certificate of alias {alias!r} in the "
                    "manifests; values it opens are still shown as that alias."
                )
        keys.append((alias, private))
    scan = secrets.scan_source(workspace.source, "")
    attributed = secrets.attribute(
        scan,
        encipherment=set(certificates) | scan.encipherment,
        public_keys_of=public_keys_of,
        keys=keys,
    )
    attributed.sort(key=lambda item: (item[0].file, item[0].line, item[0].column))
    unopened = [(v, a) for v, a in attributed if keys and a.alias is None]
    damaged = [(v, a) for v, a in attributed if a.problem is not None]
    if fmt is ReportFormat.json:
        ui.result(
            dumps(
                {
                    "source": source_to_json(workspace.source.info),
                    "keys": [alias for alias, _ in given],
                    "count": len(attributed),
                    "byAlias": dict(sorted(Counter(a.alias or "?" for _, a in attributed).items())),
                    "values": [_value_json(v, a) for v, a in attributed],
                    "unopened": [_value_json(v, a) for v, a in unopened] if keys else None,
                    "skipped": [{"file": p, "reason": r} for p, r in scan.skipped],
                    "filesExamined": scan.examined,
                }
            )
        )
    else:
        ui.result("".join(f"{v.where} {v.path} {a.alias or '?'}\n" for v, a in attributed))
    _scan_summary(ui, scan, attributed, unopened, damaged, keys=bool(keys))


def _scan_summary(
    ui: Ui,
    scan: Any,
    attributed: list[tuple[EncValue, Attribution]],
    unopened: list[tuple[EncValue, Attribution]],
    damaged: list[tuple[EncValue, Attribution]],
    *,
    keys: bool,
) -> None:
    files = len({v.file for v, _ in attributed})
    counts = Counter(a.alias or "?" for _, a in attributed)
    by_alias = ", ".join(f"{alias}: {count}" for alias, count in sorted(counts.items()))
    ui.info(
        f"Found {len(attributed)} enc: value(s) in {files} of {scan.examined} YAML and JSON "
        f"file(s)" + (f" ({by_alias})." if attributed else ".")
    )
    for path, reason in scan.skipped:
        ui.warn(f"skipped {path}: {reason}")
    for value, attribution in damaged:
        ui.warn(f"{value.where} {value.path} is not a valid JS7 value: {attribution.problem}")
    if unopened:
        ui.warn(f"none of the given keys opens {len(unopened)} value(s):")
        for line in _shown_list([f"  {v.where} {v.path}" for v, _ in unopened]):
            ui.info(line)
    elif not keys and counts.get("?"):
        ui.info(
            "For `?` values no single alias could be inferred; `--key ALIAS=FILE` tells which key "
            "opens them."
        )


# ----------------------------------------------------------------------------------- rotate


def _default_key_type(facts: Any) -> str:
    from js7certctl.keygen import DEFAULT_KEY_TYPE, KEY_TYPES

    if facts.key_type == "RSA":
        wanted = f"rsa:{facts.key_size}"
    elif facts.key_type == "EC":
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "P-256": "P-256", "P-384": "P-384"}
        wanted = f"ec:{curves.get(facts.curve or '', facts.curve)}"
    else:
        wanted = DEFAULT_KEY_TYPE
    return wanted if wanted in KEY_TYPES else DEFAULT_KEY_TYPE


@app.command(
    epilog="Example: js7certctl rotate agent-payments --old-key ~/agent-keys/agent-payments.key "
    "--key-out ~/agent-keys/agent-payments-2027.key --agent-key-path "
    "/var/sos-berlin.com/js7/agent/config/private/agent-payments-2027.key",
)
def rotate(
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias to give a new key.")],
    old_key: Annotated[
        Path,
        typer.Option(
            "--old-key",
            metavar="FILE",
            help="The alias's current private key: values it opens are re-encrypted.",
        ),
    ],
    key_out: Annotated[
        Path,
        typer.Option(
            "--key-out",
            metavar="PATH",
            help="Where to write the new private key (PKCS#8, unencrypted, mode 0600); outside "
            "the Git work tree unless Git ignores the path. Never overwritten.",
        ),
    ],
    key_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="The new key's type: rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384 or "
            "ec:secp256k1 (default: the current certificate's type, else rsa:3072).",
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=36500, help="Validity of the new certificate.")
    ] = 730,
    agent_key_path: Annotated[
        str | None,
        typer.Option(
            "--agent-key-path",
            metavar="PATH",
            help="Where the Agents will find the new key (the manifest's new privateKeyPath); "
            "a path beside the old key lets both coexist during the switch.",
        ),
    ] = None,
    old_key_password_file: Annotated[
        Path | None,
        typer.Option(
            "--old-key-password-file", metavar="FILE", help="Read the old key's password from FILE."
        ),
    ] = None,
    old_key_password_env: Annotated[
        str | None,
        typer.Option(
            "--old-key-password-env",
            metavar="VAR",
            help="Read the old key's password from the environment variable VAR.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would change; write nothing (no key either)."),
    ] = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Give an alias a new key pair and certificate, and re-encrypt every value for it.

    Every `enc:` value in the repository's YAML and JSON files that --old-key opens is
    re-encrypted in place for the new certificate (formatting and comments kept); the manifest
    gets the new certificate (and --agent-key-path as privateKeyPath). Values the old key does
    not open are left alone and listed. Review with `git diff`, then plan and apply.
    """
    from datetime import UTC, datetime

    from js7certctl import agentkeys, certs, keygen
    from js7certctl import rotate as rotation_module
    from js7certctl.cli_crypto import load_private_key_file
    from js7certctl.manifest import is_absolute_key_path
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    if old_key_password_file is not None and old_key_password_env is not None:
        raise UsageError(
            "give the old key's password one way: --old-key-password-file FILE or "
            "--old-key-password-env VAR."
        )
    if key_type is not None and key_type not in keygen.KEY_TYPES:
        raise UsageError(
            f"unknown key type {key_type!r}; use one of {', '.join(keygen.KEY_TYPES)}."
        )
    workspace = open_workspace(repo=repo, config_file=config)
    chosen = workspace.config.target(target)
    desired, _ = rotation_module.find_alias(workspace, chosen, alias)
    key_path = agentkeys.check_key_location(key_out)
    chosen_type = key_type or _default_key_type(desired.facts)
    if agent_key_path is not None and not is_absolute_key_path(agent_key_path):
        ui.warn(
            f"--agent-key-path {agent_key_path!r} is relative; Agents need an absolute path "
            "(or C:\\... on Windows)."
        )
    if agent_key_path is None or agent_key_path == desired.private_key_path:
        ui.warn(
            "the new key keeps the privateKeyPath of the old one, so installing it replaces the "
            "old key on the Agents: jobs fail for values not yet redeployed. Give "
            "--agent-key-path a new path to let both keys coexist during the switch."
        )
    private_old = load_private_key_file(old_key, old_key_password_file, old_key_password_env)
    rotation_module.check_old_key(desired, private_old)
    now = datetime.now(UTC)
    new_private = None
    new_certificate: str | None = None
    if not dry_run:
        ui.info(f"Making a new {chosen_type} key and certificate for {alias}")
        new_private = keygen.generate_key(chosen_type)
        new_certificate = keygen.self_signed_certificate(new_private, alias, days, now)
    rotation = rotation_module.prepare(
        workspace,
        chosen,
        alias,
        private_old,
        new_certificate=new_certificate,
        new_key_path=agent_key_path,
        now=now,
        progress=ui.info,
    )
    root = workspace.location.root
    if dry_run:
        rotation_module.check_unchanged(root, rotation.edits)
        _report(ui, rotation, key_path, chosen_type, days, None, now)
        ui.result("Dry run: nothing was written.\n")
        return
    assert new_private is not None
    assert new_certificate is not None
    rotation_module.write(root, rotation, key_path, keygen.private_key_pem(new_private))
    facts = certs.live_facts(new_certificate)
    _report(ui, rotation, key_path, chosen_type, days, facts, now)
    _next_steps(ui, rotation, key_path)


def _report(
    ui: Ui,
    rotation: Any,
    key_path: Path,
    key_type: str,
    days: int,
    facts: Any,
    now: Any,
) -> None:
    from js7certctl import certs
    from js7certctl.cli_crypto import shown_path

    would = "Would write" if rotation.dry_run else "Wrote"
    lines = [f"Rotating alias {rotation.alias}: {certs.describe(rotation.desired.facts, now)}"]
    if facts is not None:
        lines.append(f"  new certificate: {certs.describe(facts, now)}")
    else:
        lines.append(f"  new certificate: {key_type}, valid {days} days (made when run for real)")
    shown_key = shown_path(key_path)
    lines.append(f"{would} the private key  {shown_key} (PKCS#8, unencrypted, mode 0600)")
    for edit in rotation.edits:
        if edit.what == "certificate":
            lines.append(f"{would} the certificate  {edit.path}")
        elif edit.what == "manifest":
            lines.append(f"{would} the manifest     {edit.path} ({edit.detail})")
    for edit in rotation.edits:
        if edit.what in ("values", "jobresource") and edit.detail:
            lines.append(f"{would} JOC's Job Resource export {edit.path} ({edit.detail})")
    edits = [e for e in rotation.value_edits if e.values]
    verb = "Would re-encrypt" if rotation.dry_run else "Re-encrypted"
    lines.append(
        f"{verb} {len(rotation.opened)} value(s) for the new certificate in {len(edits)} file(s)"
        + (":" if edits else ".")
    )
    lines += [f"  {edit.path}: {edit.values}" for edit in edits]
    if rotation.left_alone:
        lines.append(
            f"Left alone {len(rotation.left_alone)} value(s) that the old key does not open:"
        )
        lines += _shown_list([f"  {v.where} {v.path}" for v in rotation.left_alone])
    ui.result("\n".join(lines) + "\n")


def _next_steps(ui: Ui, rotation: Any, key_path: Path) -> None:
    from js7certctl.cli_crypto import shown_path

    alias = rotation.alias
    new_path = rotation.new_key_path or "the manifest's privateKeyPath"
    old_path = rotation.old_key_path or "its old path"
    steps = [
        f"Install the new private key {shown_path(key_path)} on every Agent that decrypts for "
        f"{alias}, "
        f"at {new_path}, owned by the Agent's user with mode 0600, BEFORE applying. Keep the old "
        f"key at {old_path}.",
        "Review the change (`git diff`: the certificate, the manifest and the re-encrypted "
        "values only) and commit it on a branch; the pull request's plan shows one update for "
        f"{alias} and the JS7 objects that use its Job Resource.",
        "After merging, `js7certctl apply`, and deploy the re-encrypted Job Resources and "
        "workflows in JOC right after it (they only decrypt with the new key).",
        "Keep the old key on the Agents until every job runs with the new values (orders "
        "started before the deployment still carry old ones); then delete it, and delete or "
        "vault this copy of the new key.",
    ]
    if rotation.left_alone:
        steps.append(
            "Values left alone are encrypted for other keys; if any is meant for "
            f"{alias}, re-encrypt it by hand (`js7certctl encrypt --alias {alias}`)."
        )
    ui.info("Next steps:")
    for number, step in enumerate(steps, 1):
        ui.info(f"  {number}. {step}")
