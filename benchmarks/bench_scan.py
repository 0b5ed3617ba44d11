"""Time `secrets scan`, `plan` (with its blast radius) and `rotate --dry-run` on a large repository.

Run from the project root: ``python benchmarks/bench_scan.py``. Not part of the test run.
It makes a Git repository with 5,000 JS7 workflows, 1,000 Job Resources (two values each),
500 YAML values files (10 values each), 2,000 other JSON files and 50 manifests, all values
encrypted for one of the 50 aliases, and runs each command once as a fresh process (start-up
included), in the working tree and at ``--ref HEAD``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from js7certctl.envelope import Encryptor, load_public_key
from tests import certgen
from tests.helpers import GIT_ENV, manifest

ROOT = Path(__file__).resolve().parents[1]
ALIASES = 50
WORKFLOWS = 5_000
JOB_RESOURCES = 1_000
VALUE_FILES = 500
OTHER_JSON = 2_000


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _build(repo: Path, keys_dir: Path) -> None:
    key = certgen.rsa_key(2048)
    (keys_dir / "agent-000.key").write_text(certgen.private_key_pem(key))
    encryptors = []
    for number in range(ALIASES):
        alias = f"agent-{number:03d}"
        cert = certgen.make_cert(key if number == 0 else certgen.ec_key(variant=number), cn=alias)
        _write(repo / "certs" / f"{alias}.yaml", manifest(alias, certificate=cert))
        encryptors.append(Encryptor(load_public_key(cert.encode())[0]))
    _write(repo / "js7certctl.yaml", "manifests: [certs/]\n")

    def value(number: int) -> str:
        return encryptors[number % ALIASES].encrypt(b"secret").to_string()

    for number in range(JOB_RESOURCES):
        arguments = {"user": '"app"', "password": json.dumps(value(number)), "token": value(number)}
        _write(
            repo / "inventory" / f"F{number % 40}" / f"Res-{number}.jobresource.json",
            json.dumps({"TYPE": "JobResource", "arguments": arguments}, indent=2),
        )
    for number in range(WORKFLOWS):
        alias = f"agent-{number % ALIASES:03d}"
        jobs: dict[str, dict[str, Any]] = {
            f"job{j}": {
                "agentName": "agent",
                "executable": {"TYPE": "ShellScriptExecutable", "script": "echo hello\n" * 20},
                "jobResourceNames": [f"Res-{(number + j) % JOB_RESOURCES}"],
                "defaultArguments": {"x": '"plain"'},
            }
            for j in range(5)
        }
        workflow = {
            "TYPE": "Workflow",
            "jobResourceNames": [alias],
            "instructions": [{"TYPE": "Execute.Named", "jobName": j} for j in jobs],
            "jobs": jobs,
        }
        if number % 10 == 0:
            jobs["job0"]["defaultArguments"]["secret"] = json.dumps(value(number))
        _write(
            repo / "inventory" / f"F{number % 40}" / f"wf-{number}.workflow.json",
            json.dumps(workflow, indent=2),
        )
    for number in range(VALUE_FILES):
        lines = [f"# values {number}"] + [f"v{i}: {value(number)}" for i in range(10)]
        _write(repo / "secrets" / f"values-{number}.yaml", "\n".join(lines) + "\n")
    for number in range(OTHER_JSON):
        _write(repo / "other" / f"data-{number}.json", json.dumps({"n": number, "s": "x" * 500}))
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)


def _time(repo: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "js7certctl", *args, "--repo", str(repo)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{args} failed: {proc.stderr}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo, keys = Path(tmp) / "repo", Path(tmp) / "keys"
        repo.mkdir()
        keys.mkdir()
        _build(repo, keys)
        files = sum(1 for _ in repo.rglob("*.json")) + sum(1 for _ in repo.rglob("*.yaml"))
        print(f"{files} YAML and JSON files; one process per command, start-up included:")
        rows = [
            ("secrets scan", ("secrets", "scan", "--quiet")),
            ("secrets scan --ref HEAD", ("secrets", "scan", "--quiet", "--ref", "HEAD")),
            (
                "secrets scan --key (one RSA key)",
                ("secrets", "scan", "--quiet", "--key", f"agent-000={keys / 'agent-000.key'}"),
            ),
            ("apply (creates: no scan)", ("apply", "--auto-approve", "--quiet")),
        ]
        for label, args in rows:
            print(f"  {label:<36} {_time(repo, *args):6.2f} s")
        manifest_file = repo / "certs" / "agent-001.yaml"
        manifest_file.write_text(manifest_file.read_text().replace("agent.key", "other.key"))
        print(f"  {'plan (one update: blast radius)':<36} {_time(repo, 'plan'):6.2f} s")
        dry_run: tuple[str, ...] = ("rotate", "agent-000", "--old-key", str(keys / "agent-000.key"))
        dry_run += ("--key-out", str(keys / "new.key"), "--dry-run", "--quiet")
        print(f"  {'rotate --dry-run':<36} {_time(repo, *dry_run):6.2f} s")


if __name__ == "__main__":
    main()
