"""The command line: the only module that prints, prompts or exits.

Every command runs inside one error boundary (:class:`_Group.main`): the tool's own errors become
one clear message on stderr and their exit code; usage errors exit 64 (never 2, which means
"changes"); ^C exits 130; anything unexpected prints its type only (no traceback, no locals,
which might hold secrets) unless ``--debug`` is given.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from js7certctl.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Js7CertCtlError,
    ValidationFailed,
)
from js7certctl.model import Problem

try:  # Typer >= 0.26 bundles its own copy of Click; `import click` may be another one.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older Typer with a separate Click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]


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
        except click_exceptions.Abort:
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
DebugOpt = Annotated[
    bool, typer.Option("--debug", help="Print tracebacks of internal errors (never secrets).")
]


class ReportFormat(StrEnum):
    text = "text"
    json = "json"


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


def _ui(quiet: bool, no_color: bool, debug: bool, *, stream: Any = None) -> Ui:
    _STATE["debug"] = debug
    out = stream or sys.stdout
    color = not no_color and "NO_COLOR" not in os.environ and out.isatty()
    return Ui(quiet=quiet, color=color)


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


def _now() -> datetime:
    return datetime.now(UTC)


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
        ReportFormat, typer.Option("--format", "-f", help="Report format.")
    ] = ReportFormat.text,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check every manifest and the config offline, with certificate health.

    Exit 0 when valid (warnings allowed), 1 when anything is an error.
    """
    from js7certctl.render import validation
    from js7certctl.workspace import open_workspace

    ui = _ui(quiet, no_color, debug)
    workspace = open_workspace(repo=repo, config_file=config, ref=ref)
    chosen = workspace.config.target(target)
    now = _now()
    if any(p.is_error for p in workspace.config_problems):
        raise ValidationFailed(workspace.config_problems, "the config has errors.")
    result = workspace.load(chosen, now=now)
    if fmt is ReportFormat.json:
        ui.result(validation.render_json(result, workspace.source.info, chosen.name, now))
    else:
        ui.result(
            validation.render_text(result, workspace.source.info, chosen.name, now, ui.style)
        )
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

    ui = _ui(quiet, no_color, debug)
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


def main() -> None:
    """The console script."""
    app()
