"""The command line: the only module that prints, prompts or exits.

Every command runs inside one error boundary (:class:`_Group.main`): the tool's own errors become
one clear message on stderr and their exit code; usage errors exit 64 (never 2, which means
"changes"); ^C exits 130; anything unexpected prints its type only (no traceback, no locals,
which might hold secrets) unless ``--debug`` is given.
"""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

# Typer bundles its own copy of Click; `import click` may be another one (../shared/notes.md).
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from js7certctl.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Js7CertCtlError,
    ValidationFailed,
)
from js7certctl.model import Problem

_STATE: dict[str, bool] = {"debug": False}


class _Group(TyperGroup):
    """The error boundary and the exit-code mapping for every command."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click_exceptions.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click_exceptions.ClickException as exc:
            exc.show()
            sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
        except ValidationFailed as exc:
            for problem in exc.problems:
                typer.echo(problem.format(), err=True)
            typer.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Js7CertCtlError as exc:
            typer.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _STATE["debug"]:
                traceback.print_exc()
            typer.echo(
                f"Internal error ({type(exc).__name__}); this is a bug in js7certctl. "
                "Run again with --debug for the traceback and report it.",
                err=True,
            )
            sys.exit(EXIT_ERROR)
        if code == EXIT_INTERRUPTED:  # Typer turns ^C into a silent exit 130
            typer.echo("Interrupted.", err=True)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_Group,
    name="js7certctl",
    help="Manage JS7 JobScheduler encryption certificates the GitOps way: manifests in Git, "
    "plans you can review, applies you can trust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from js7certctl import __version__

        typer.echo(f"js7certctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Manage JS7 JobScheduler encryption certificates the GitOps way: manifests in Git, plans
    you can review, applies you can trust."""


# ----------------------------------------------------------------------------- common options

RepoOpt = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        help="The folder to work in (default: the current folder); its Git repository is used.",
        file_okay=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="The config file (default: js7certctl.yaml found upwards)."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option("--target", "-t", help="The target keystore (default: defaultTarget)."),
]
RefOpt = Annotated[
    str | None,
    typer.Option(
        "--ref",
        help="Read the manifests at this Git revision (branch, tag, commit) instead of the "
        "working tree.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only results and errors.")]
NoColorOpt = Annotated[
    bool, typer.Option("--no-color", help="No colours (also when NO_COLOR is set).")
]
NoInputOpt = Annotated[
    bool,
    typer.Option("--no-input", help="Never prompt (implied when the CI variable is set)."),
]
DebugOpt = Annotated[
    bool, typer.Option("--debug", help="Print tracebacks of internal errors (never secrets).")
]


class ReportFormat(StrEnum):
    text = "text"
    json = "json"


class ValidateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    codeclimate = "codeclimate"


@dataclass(slots=True)
class Ui:
    """Where output goes: results to stdout, everything else to stderr."""

    quiet: bool = False
    color: bool = True

    def style(self, text: str, colour: str) -> str:
        return typer.style(text, fg=colour) if self.color else text

    def result(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def info(self, text: str) -> None:
        if not self.quiet:
            typer.echo(text, err=True)

    def warn(self, text: str) -> None:
        typer.echo(self.style(f"Warning: {text}", "yellow"), err=True)

    def problems(self, problems: list[Problem]) -> None:
        for problem in problems:
            colour = "red" if problem.is_error else "yellow"
            typer.echo(self.style(problem.format(), colour), err=True)


def make_ui(quiet: bool, no_color: bool, debug: bool, *, stream: Any = None) -> Ui:
    _STATE["debug"] = debug
    out = stream or sys.stdout
    color = not no_color and "NO_COLOR" not in os.environ and out.isatty()
    return Ui(quiet=quiet, color=color)


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


def _now() -> datetime:
    return datetime.now(UTC)


def ci_context() -> Any:
    from js7certctl import ci

    return ci.detect(os.environ)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


# ----------------------------------------------------------------------------- validate


@app.command(
    epilog="Example: js7certctl validate --ref origin/main --format json",
)
def validate(
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    fmt: Annotated[
        ValidateFormat,
        typer.Option(
            "--format",
            "-f",
            help="Report format: text, json, github (workflow annotations) or codeclimate "
            "(GitLab code-quality report).",
        ),
    ] = ValidateFormat.text,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check every manifest and the config offline, with certificate health.

    Exit 0 when valid (warnings allowed), 1 when anything is an error. Under GitHub Actions the
    text report is followed by one annotation per problem.
    """
    from js7certctl.render import validation
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    workspace = open_workspace(repo=repo, config_file=config, ref=ref)
    chosen = workspace.config.target(target)
    now = _now()
    if any(p.is_error for p in workspace.config_problems):
        raise ValidationFailed(workspace.config_problems, "the config has errors.")
    result = workspace.load(chosen, now=now)
    if fmt is ValidateFormat.json:
        ui.result(validation.render_json(result, workspace.source.info, chosen.name, now))
    elif fmt is ValidateFormat.github:
        ui.result(validation.render_github(result))
    elif fmt is ValidateFormat.codeclimate:
        ui.result(validation.render_codeclimate(result))
    else:
        ui.result(validation.render_text(result, workspace.source.info, chosen.name, now, ui.style))
        if ci_context().system == "github" and result.problems:
            ui.result(validation.render_github(result))
    if not result.ok:
        _exit(EXIT_ERROR)


# ----------------------------------------------------------------------------- init

_STARTER_CONFIG = """\
# js7certctl repository config: https://github.com/ (see the README of js7certctl)
manifests: [certs/]
defaults:
  jobResourceFolder: /Encryption
policy:
  expiryWarningDays: 30
  minRsaBits: 2048
  protect: []
  prune: true
  scope: ["*"]
  maxDeletes: 10
targets:
  local: {backend: local, path: .js7certctl/keystore.db}
  # prod: {backend: joc, url: "https://joc.example.com:4443", caBundle: ca.pem}
defaultTarget: local
"""

_STARTER_MANIFEST = """\
# An example manifest with a throwaway certificate (its private key was discarded).
# Replace it with a certificate of yours, e.g. made by `js7certctl keys new ALIAS`.
apiVersion: js7certctl/v1
kind: EncryptionCertificate
metadata:
  alias: example-agent
spec:
  privateKeyPath: /var/sos-berlin.com/js7/agent/config/private/example-agent.key
  certificate: |
{certificate}"""


@app.command(epilog="Example: js7certctl init --repo ./certificates")
def init(
    repo: RepoOpt = None,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a starter js7certctl.yaml, a .gitignore entry and an example manifest.

    Never overwrites a file; `validate` passes right after.
    """
    from js7certctl import keygen

    ui = make_ui(quiet, no_color, debug)
    base = (repo or Path.cwd()).resolve()
    if not base.is_dir():
        raise typer.BadParameter(f"{base} is not a folder", param_hint="--repo")
    written: list[str] = []

    def write_new(path: Path, text: str) -> None:
        if path.exists():
            ui.info(f"{path.relative_to(base)} exists; left as it is.")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
        written.append(str(path.relative_to(base)))

    write_new(base / "js7certctl.yaml", _STARTER_CONFIG)
    manifest = base / "certs" / "example-agent.yaml"
    if not manifest.exists():
        key = keygen.generate_key("ec:P-256")
        pem = keygen.self_signed_certificate(key, "example-agent", 365)
        indented = "".join(f"    {line}\n" for line in pem.splitlines())
        write_new(manifest, _STARTER_MANIFEST.format(certificate=indented))
    else:
        ui.info(f"{manifest.relative_to(base)} exists; left as it is.")
    gitignore = base / ".gitignore"
    entry = ".js7certctl/"
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if entry not in existing.splitlines():
        with open(gitignore, "a", encoding="utf-8") as handle:
            if existing and not existing.endswith("\n"):
                handle.write("\n")
            handle.write(f"{entry}\n")
        written.append(".gitignore")
    for path in written:
        ui.result(f"wrote {path}\n")
    ui.info("Next: `js7certctl validate`, then `js7certctl plan`.")


# ----------------------------------------------------------------------------- plan / apply


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


AllowMassDeleteOpt = Annotated[
    bool,
    typer.Option(
        "--allow-mass-delete", help="Allow a plan that deletes more than policy.maxDeletes aliases."
    ),
]
AllowReferencedDeleteOpt = Annotated[
    bool,
    typer.Option(
        "--allow-referenced-delete",
        help="Allow deleting aliases whose Job Resource JS7 objects in the repository still use.",
    ),
]
LockTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        help="Seconds to wait for another apply on the embedded keystore before failing.",
        min=0,
    ),
]


InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="JOC targets: do not verify JOC's TLS certificate (prints a warning).",
    ),
]
DeployTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--deploy-timeout",
        help="JOC targets: seconds to wait after apply for JOC to deploy the Job Resources.",
        min=0,
    ),
]


def _backend_options(
    ui: Ui, lock_timeout: float = 30.0, insecure: bool = False, deploy_timeout: float = 30.0
) -> Any:
    from js7certctl.keystore.factory import BackendOptions

    if insecure:
        ui.warn(
            "TLS certificate verification is turned off (--insecure): anybody on the network "
            "path to JOC can read and change what is sent."
        )
    return BackendOptions(
        lock_timeout=lock_timeout,
        insecure=insecure,
        deploy_timeout=deploy_timeout,
        notify=ui.warn,
    )


def _close_when_done(keystore: Any) -> None:
    """Close the keystore (log out of JOC) when the command ends, however it ends: also on ^C or
    EOF at the confirmation prompt. Closing twice is harmless."""
    from typer._click.globals import get_current_context

    context = get_current_context(silent=True)
    if context is not None:
        context.call_on_close(keystore.close)


@app.command(
    epilog="Examples: js7certctl plan --detailed-exitcode; "
    "js7certctl plan --ref origin/main --out plan.json --format markdown > comment.md",
)
def plan(
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Also show what the manifests changed between this revision (the pull "
            "request's base) and --ref.",
        ),
    ] = None,
    all_targets: Annotated[
        bool,
        typer.Option("--all-targets", help="One plan per target of the config, in one report."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Save the plan to FILE (for `apply FILE`), mode 0600."),
    ] = None,
    fmt: Annotated[
        PlanFormat, typer.Option("--format", "-f", help="How to print the plan.")
    ] = PlanFormat.text,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 when there is nothing to do, 2 when there are changes.",
        ),
    ] = False,
    allow_mass_delete: AllowMassDeleteOpt = False,
    allow_referenced_delete: AllowReferencedDeleteOpt = False,
    insecure: InsecureOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compare the manifests with the live keystore and print what apply would change.

    Reads the manifests from the working tree, or at --ref; never writes to the keystore.
    Exit 0 on success (with --detailed-exitcode: 0 no changes, 2 changes), 1 on any error.
    With --format markdown an error is rendered as a comment too (for the pull request).
    """
    from js7certctl.planfile import write_plan
    from js7certctl.planning import plan_targets
    from js7certctl.render import plan as render_plan
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    if all_targets and (target is not None or out is not None):
        raise click_exceptions.UsageError("--all-targets cannot be used with --target or --out")
    now = _now()
    try:
        workspace = open_workspace(repo=repo, config_file=config, ref=ref)
        base_workspace = (
            open_workspace(repo=repo, config_file=config, ref=base) if base is not None else None
        )
        chosen = (
            list(workspace.config.targets.values())
            if all_targets
            else [workspace.config.target(target)]
        )
        outcome = plan_targets(
            workspace,
            chosen,
            _backend_options(ui, insecure=insecure),
            allow_mass_delete=allow_mass_delete,
            now=now,
            base=base_workspace,
            keep_going=all_targets,
            allow_referenced_delete=allow_referenced_delete,
        )
    except Js7CertCtlError as exc:
        if fmt is PlanFormat.markdown:
            ui.result(render_plan.render_markdown_error(target or "(default)", exc))
        raise
    for planned in outcome.plans:
        ui.problems([p for p in planned.warnings if p not in planned.plan.warnings])
    plans = [p.plan for p in outcome.plans]
    if all_targets:
        ui.result(render_plan.render_many(plans, outcome.failures, fmt.value, now, ui.style))
    else:
        ui.result(render_plan.render(plans[0], fmt.value, now, ui.style))
    if out is not None:
        write_plan(plans[0], out)
        ui.info(f"Saved the plan to {out}; apply exactly it with `js7certctl apply {out}`.")
    if outcome.failures:
        names = ", ".join(name for name, _ in outcome.failures)
        raise Js7CertCtlError(f"the plan failed for target(s) {names} (see above)")
    if detailed_exitcode and any(not p.empty for p in plans):
        _exit(2)


@app.command(
    epilog="Examples: js7certctl apply plan.json; js7certctl apply --auto-approve "
    '--comment "rotate agent-001"',
)
def apply(
    planfile: Annotated[
        Path | None,
        typer.Argument(
            help="A plan saved with `plan --out`; applied exactly, or refused if stale."
        ),
    ] = None,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Apply without asking (for CI).")
    ] = False,
    no_input: NoInputOpt = False,
    allow_mass_delete: AllowMassDeleteOpt = False,
    allow_referenced_delete: AllowReferencedDeleteOpt = False,
    comment: Annotated[
        str | None,
        typer.Option(
            "--comment",
            help="Audit-log comment (default: js7certctl apply <revision>, plus the CI pipeline "
            "URL when run in CI).",
        ),
    ] = None,
    ticket_link: Annotated[
        str | None,
        typer.Option(
            "--ticket-link",
            help="Audit-log ticket link (default in CI: the pull/merge request or pipeline URL).",
        ),
    ] = None,
    lock_timeout: LockTimeoutOpt = 30.0,
    insecure: InsecureOpt = False,
    deploy_timeout: DeployTimeoutOpt = 30.0,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Apply a saved plan exactly, or plan and ask for confirmation.

    Without PLANFILE the plan is shown and only a typed `yes` applies it; with no terminal,
    --auto-approve is required. Order: creates and updates, then Agent assignments, then deletes.
    """
    from js7certctl.apply import apply_plan
    from js7certctl.keystore.factory import open_keystore
    from js7certctl.model import Action, AuditLog
    from js7certctl.planfile import read_plan
    from js7certctl.planning import make_plan, open_target
    from js7certctl.render import plan as render_plan
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    now = _now()
    options = _backend_options(ui, lock_timeout, insecure, deploy_timeout)
    if planfile is not None:
        if ref is not None:
            raise click_exceptions.UsageError("--ref cannot be used with a plan file")
        the_plan = read_plan(planfile)
        if target is not None and target != the_plan.target.name:
            from js7certctl.errors import PlanFileError

            raise PlanFileError(
                f"{planfile} was made for target {the_plan.target.name!r} "
                f"({the_plan.target.location}), not {target!r}",
                hint="Apply it without --target, or make a plan for that target.",
            )
        keystore = open_keystore(
            the_plan.target.name, the_plan.target.backend, the_plan.connection, options
        )
        _close_when_done(keystore)
        if keystore.identity != the_plan.target:
            keystore.close()
            from js7certctl.errors import PlanFileError

            raise PlanFileError(
                f"{planfile} was made for {the_plan.target.location}, but that target is now "
                f"{keystore.identity.location}; make the plan again"
            )
        ui.result(render_plan.render(the_plan, "text", now, ui.style))
    else:
        workspace = open_workspace(repo=repo, config_file=config, ref=ref)
        chosen = workspace.config.target(target)
        keystore = open_target(workspace, chosen, options)
        _close_when_done(keystore)
        try:
            planned = make_plan(
                workspace,
                chosen,
                keystore,
                allow_mass_delete=allow_mass_delete,
                now=now,
                allow_referenced_delete=allow_referenced_delete,
            )
        except BaseException:
            keystore.close()
            raise
        the_plan = planned.plan
        ui.problems([p for p in planned.warnings if p not in the_plan.warnings])
        ui.result(render_plan.render(the_plan, "text", now, ui.style))
        if not the_plan.empty and not auto_approve:
            if no_input or ci_context().active or not _stdin_is_terminal():
                keystore.close()
                raise Js7CertCtlError(
                    "there is no terminal to confirm the apply (or input is off: --no-input, "
                    "CI), so nothing was changed",
                    hint="Pass --auto-approve, or save the plan with `plan --out FILE` and run "
                    "`apply FILE`.",
                )
            answer = typer.prompt(
                "Do you want to apply these changes? Only 'yes' will be accepted", default=""
            )
            if answer.strip() != "yes":
                keystore.close()
                ui.info("Apply cancelled; nothing was changed.")
                _exit(EXIT_ERROR)
    try:
        if the_plan.empty:
            return
        context = ci_context()
        # `--comment ""` means no comment (JOC may then refuse); no option means the default.
        audit = AuditLog(
            comment=(comment or None)
            if comment is not None
            else context.default_comment(the_plan.source.revision),
            ticket_link=(ticket_link or None)
            if ticket_link is not None
            else context.default_ticket_link(),
        )

        bar = not quiet and sys.stderr.isatty()

        def progress(step: Any, index: int, total: int) -> None:
            if bar:
                # A progress bar on a terminal; each step stays readable in logs otherwise.
                width = 30
                filled = width * index // total
                text = f"[{'#' * filled}{'.' * (width - filled)}] {index}/{total} {step.describe()}"
                columns = shutil.get_terminal_size().columns
                sys.stderr.write("\r" + text[: columns - 1].ljust(columns - 1))
                sys.stderr.flush()
            else:
                ui.info(f"  [{index}/{total}] {step.describe()}")

        try:
            report = apply_plan(the_plan, keystore, audit, progress)
        finally:
            if bar:
                sys.stderr.write("\n")
    finally:
        keystore.close()
    for resource in report.left_behind:
        ui.info(
            f"Note: the Job Resource {resource} stays behind in the inventory; "
            "remove it in JOC if unused."
        )
    ui.result(
        f"Apply complete: {the_plan.count(Action.CREATE)} added, "
        f"{the_plan.count(Action.UPDATE)} changed, {the_plan.count(Action.DELETE)} deleted.\n"
    )


@app.command(epilog="Example: js7certctl show plan.json --format markdown")
def show(
    planfile: Annotated[Path, typer.Argument(help="A plan saved with `plan --out`.")],
    fmt: Annotated[
        PlanFormat, typer.Option("--format", "-f", help="How to print the plan.")
    ] = PlanFormat.text,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print a saved plan (text, JSON or Markdown); needs neither Git nor the keystore."""
    from js7certctl.planfile import read_plan
    from js7certctl.render import plan as render_plan

    ui = make_ui(quiet, no_color, debug)
    the_plan = read_plan(planfile)
    ui.result(render_plan.render(the_plan, fmt.value, _now(), ui.style))


@app.command(name="list", epilog="Example: js7certctl list --target prod --format json")
def list_(
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="Table or JSON.")
    ] = ReportFormat.text,
    insecure: InsecureOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the live keystore: aliases, certificate facts, key paths, folders, Agents.

    Certificate text is never printed, only parsed facts and fingerprints.
    """
    from js7certctl.planning import open_target
    from js7certctl.render import live as render_live
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    workspace = open_workspace(repo=repo, config_file=config)
    chosen = workspace.config.target(target)
    keystore = open_target(workspace, chosen, _backend_options(ui, insecure=insecure))
    try:
        entries = keystore.list_entries()
        identity = keystore.identity
    finally:
        keystore.close()
    now = _now()
    if fmt is ReportFormat.json:
        ui.result(render_live.render_json(entries, identity, now))
    else:
        ui.result(render_live.render_text(entries, identity, now))


def main() -> None:
    """The console script."""
    app()


# Command groups defined in their own modules register themselves on `app` when imported.
from js7certctl import cli_crypto, cli_expiry, cli_gitops, cli_secrets  # noqa: E402, F401
