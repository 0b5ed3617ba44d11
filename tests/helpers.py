"""Shared test helpers: real Git repositories in temporary folders and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from js7certctl.cli import app
from js7certctl.keystore.local import LocalKeystore

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
EXAMPLES = PROJECT_ROOT / "examples" / "certs"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class GitRepo:
    """A real Git repository in a temporary folder."""

    def __init__(self, path: Path, *, init: bool = True) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        if init:
            self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip()

    def write(self, rel: str, content: str | bytes) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        return target

    def remove(self, rel: str) -> None:
        (self.path / rel).unlink()

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Run:
    """Run the CLI in-process (through the same error boundary as the console script)."""
    runner = CliRunner()
    result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def run_process(
    *args: str, cwd: Path, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m js7certctl`` as a separate process."""
    full_env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "js7certctl", *args],
        cwd=cwd,
        env=full_env,
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )


def manifest(
    alias: str,
    *,
    certificate: str | None = None,
    certificate_file: str | None = None,
    private_key_path: str | None = "/var/sos-berlin.com/js7/agent/config/private/agent.key",
    job_resource_folder: str | None = None,
    agents: list[str] | None = None,
) -> str:
    """The YAML text of one manifest document."""
    lines = [
        "apiVersion: js7certctl/v1",
        "kind: EncryptionCertificate",
        "metadata:",
        f"  alias: {alias}",
        "spec:",
    ]
    if certificate_file is not None:
        lines.append(f"  certificateFile: {certificate_file}")
    if certificate is not None:
        lines.append("  certificate: |")
        lines.extend(f"    {line}" for line in certificate.strip().splitlines())
    if private_key_path is not None:
        lines.append(f"  privateKeyPath: {private_key_path}")
    if job_resource_folder is not None:
        lines.append(f"  jobResourceFolder: {job_resource_folder}")
    if agents is not None:
        lines.append(f"  agents: [{', '.join(agents)}]")
    return "\n".join(lines) + "\n"


def keystore_of(repo: GitRepo) -> LocalKeystore:
    """The embedded keystore at its default place in ``repo``."""
    return LocalKeystore(repo.path / ".js7certctl" / "keystore.db")
