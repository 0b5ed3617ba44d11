"""Secret hygiene: every command run with secrets planted, and everything it leaves scanned.

The secrets: a JOC password (``JS7_PASSWORD``), a value to encrypt (from stdin, a file, an
environment variable, a ``--values`` file), a key password (``--key-password-env``,
``--old-key-password-env``), a private key file (its PEM lines, encrypted and not), the JOC
session tokens the emulator hands out, and the private keys js7certctl makes (``keys new``,
``rotate``). None may appear in stdout, stderr, Python log records (every logger at DEBUG), plan
files, the SQLite keystore or the argv of any child process the CLI starts (``git``: recorded by
wrapping ``subprocess.Popen`` in this process, where the CLI runs). ``decrypt`` prints the
plaintext it was asked for, and only that. Files js7certctl writes with secrets in them are
0600. TLS verification cannot be turned off without a warning.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from js7certctl.keystore.local import LocalKeystore
from tests import certgen
from tests.helpers import GitRepo, Run, manifest, run_cli
from tests.joc_emulator import ALL_PERMISSIONS, Account, JocEmulator
from tests.joc_emulator.fixture import joc_emulator_fixture  # noqa: F401
from tests.tls_pki import Pki, make_pki

JOC_PASSWORD = "JocPw-" + secrets.token_hex(8)
VALUE = "Plain-" + secrets.token_hex(8)
KEY_PASSWORD = "KeyPw-" + secrets.token_hex(8)
AGENT_KEY_PATH = "/var/sos-berlin.com/js7/agent/config/private/agent-a.key"


def _pem_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@dataclass
class Recorder:
    """What the CLI runs leave behind: outputs, log records, child argv and environments."""

    runs: list[tuple[list[str], Run]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    children: list[list[str]] = field(default_factory=list)
    child_envs: list[dict[str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def cli(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        run = run_cli(*args, input=input, env={**ENV, **(env or {})})
        self.runs.append((list(args), run))
        return run


ENV = {"JS7_USER": "ci", "JS7_PASSWORD": JOC_PASSWORD, "KEY_PW": KEY_PASSWORD}


class _ListHandler(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, joc: JocEmulator) -> Iterator[Recorder]:
    found = Recorder()
    # Child processes: every Popen the CLI makes in this process (git, through subprocess and
    # GitPython alike) passes through Popen.__init__.
    real_init = subprocess.Popen.__init__

    def recording_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        found.children.append([str(a) for a in args] if isinstance(args, list | tuple) else [args])
        found.child_envs.append(dict(kwargs.get("env") or os.environ))
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    # Every log record of every logger, at DEBUG.
    handler = _ListHandler(found.logs)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # The session tokens JOC hands out.
    create_session = joc.api.create_session

    def recording_session(account: str, *, via: str = "basic") -> str:
        token = create_session(account, via=via)
        found.tokens.append(token)
        return token

    monkeypatch.setattr(joc.api, "create_session", recording_session)
    try:
        yield found
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def joc(joc_emulator: JocEmulator) -> JocEmulator:
    joc_emulator.config.deploy_delay = 0.01
    joc_emulator.config.accounts["ci"] = Account(JOC_PASSWORD, ALL_PERMISSIONS)
    other = certgen.make_cert(certgen.ec_key("P-256", variant=3), cn="agent-live", days=400)
    joc_emulator.state.put_certificate("agent-live", other, AGENT_KEY_PATH, "/Encryption")
    return joc_emulator


@dataclass
class World:
    repo: GitRepo
    outside: Path  # files that do not belong in the repository: keys, plans, secrets
    key_file: Path  # the Agent's private key, encrypted with KEY_PASSWORD
    plain_key_file: Path  # the same key, unencrypted
    key_lines: list[str]  # PEM lines of the key in every form


@pytest.fixture
def world(tmp_path: Path, joc: JocEmulator) -> World:
    key = certgen.rsa_key(2048, variant=7)
    repo = GitRepo(tmp_path / "repo")
    repo.write(".gitignore", ".js7certctl/\n")
    repo.write(
        "js7certctl.yaml",
        "targets:\n"
        "  local: {backend: local}\n"
        f'  prod: {{backend: joc, url: "{joc.base_url}"}}\n'
        "defaultTarget: local\n",
    )
    cert = certgen.make_cert(key, cn="agent-a", days=400)
    repo.write(
        "certs/agent-a.yaml",
        manifest("agent-a", certificate=cert, private_key_path=AGENT_KEY_PATH, agents=["a1"]),
    )
    repo.write("certs/agent-a.crt", cert)
    repo.commit("manifests")
    outside = tmp_path / "outside"
    outside.mkdir()
    encrypted = certgen.private_key_pem(key, password=KEY_PASSWORD.encode())
    plain = certgen.private_key_pem(key)
    key_file = outside / "agent-a.key"
    key_file.write_text(encrypted)
    plain_key_file = outside / "agent-a.plain.key"
    plain_key_file.write_text(plain)
    lines = _pem_lines(encrypted) + _pem_lines(plain)
    lines += _pem_lines(certgen.private_key_pem(key, fmt="traditional"))
    return World(repo, outside, key_file, plain_key_file, lines)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_every_command_keeps_every_secret(world: World, recorder: Recorder) -> None:
    repo = str(world.repo.path)
    out = world.outside
    cli = recorder.cli
    secret_file = out / "secret.txt"
    secret_file.write_text(VALUE + "\n")
    values = out / "values.yaml"
    values.write_text(f"db_password: {VALUE}\nother: {VALUE}-2\n")

    # -- the GitOps loop, on the embedded keystore and on JOC
    assert cli("validate", "--repo", repo).exit_code == 0
    for target in ("local", "prod"):
        plan = out / f"plan-{target}.json"
        run = cli("plan", "--repo", repo, "--target", target, "--out", str(plan), "--debug")
        assert run.exit_code == 0, run.stderr
        assert _mode(plan) == 0o600
        assert cli("plan", "--repo", repo, "--target", target, "--format", "json").exit_code == 0
        assert (
            cli("plan", "--repo", repo, "--target", target, "--format", "markdown").exit_code == 0
        )
        assert cli("show", str(plan), "--format", "json").exit_code == 0
        run = cli("apply", str(plan), "--debug")
        assert run.exit_code == 0, run.stderr
        assert cli("list", "--repo", repo, "--target", target, "--format", "json").exit_code == 0
        assert cli("drift", "--repo", repo, "--target", target).exit_code in (0, 2)
        assert cli("expiry", "--repo", repo, "--target", target).exit_code == 0
    run = cli("import", "--repo", repo, "--target", "prod")  # agent-live has no manifest
    assert run.exit_code == 0, run.stderr

    # -- secrets in, JS7 values out
    enc = cli("encrypt", "--alias", "agent-a", "--repo", repo, input=VALUE + "\n")
    assert enc.exit_code == 0, enc.stderr
    value = enc.stdout.strip()
    assert value.startswith("enc:")
    assert cli("encrypt", "--cert", str(world.repo.path / "certs/agent-a.crt"),
               "--secret-file", str(secret_file)).exit_code == 0  # fmt: skip
    assert cli("encrypt", "--alias", "agent-a", "--repo", repo, "--from-env", "THE_VALUE",
               env={"THE_VALUE": VALUE}).exit_code == 0  # fmt: skip
    run = cli("encrypt", "--alias", "agent-a", "--from-target", "--target", "prod",
              "--repo", repo, input=VALUE)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    batch = out / "values.enc.yaml"
    run = cli("encrypt", "--alias", "agent-a", "--repo", repo, "--values", str(values),
              "--out", str(batch))  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert _mode(batch) == 0o600
    assert VALUE not in batch.read_text()

    # -- and back, with the key password from the environment
    run = cli("decrypt", "--key", str(world.key_file), "--key-password-env", "KEY_PW",
              input=value)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert run.stdout == VALUE  # the one output that is the secret, asked for
    recorder.runs.pop()  # not scanned for VALUE: it is decrypt's answer
    assert VALUE not in run.stderr
    plaintext = out / "plain.txt"
    run = cli("decrypt", "--key", str(world.key_file), "--key-password-env", "KEY_PW",
              "--out", str(plaintext), input=value)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert _mode(plaintext) == 0o600
    assert plaintext.read_text().strip() == VALUE
    run = cli("decrypt", "--key", str(world.key_file), "--key-password-env", "KEY_PW",
              "--check", "agent-a", "--repo", repo)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    wrong = cli("decrypt", "--key", str(world.key_file), "--key-password-env", "WRONG_PW",
                input=value, env={"WRONG_PW": "not-" + KEY_PASSWORD})  # fmt: skip
    assert wrong.exit_code == 1
    assert "not-" + KEY_PASSWORD not in wrong.output

    # -- keys js7certctl makes
    new_key = out / "keys" / "agent-b.key"
    new_key.parent.mkdir()
    run = cli("keys", "new", "agent-b", "--key-out", str(new_key), "--repo", repo,
              "--agent-key-path", "/keys/agent-b.key", "--type", "ec:P-256")  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert _mode(new_key) == 0o600
    run = cli("secrets", "scan", "--repo", repo, "--key", f"agent-a={world.plain_key_file}")
    assert run.exit_code == 0, run.stderr
    rotated_key = out / "keys" / "agent-a-2.key"
    run = cli("rotate", "agent-a", "--old-key", str(world.key_file), "--old-key-password-env",
              "KEY_PW", "--key-out", str(rotated_key), "--agent-key-path",
              "/keys/agent-a-2.key", "--repo", repo)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert _mode(rotated_key) == 0o600

    # -- failures, with --debug: a wrong JOC password, an unreachable JOC
    run = cli("plan", "--repo", repo, "--target", "prod", "--debug",
              env={"JS7_PASSWORD": "x" + JOC_PASSWORD})  # fmt: skip
    assert run.exit_code == 1
    assert "x" + JOC_PASSWORD not in run.output

    init_dir = out / "fresh"
    init_dir.mkdir()
    assert cli("init", "--repo", str(init_dir)).exit_code == 0

    # -- the scan
    made = _pem_lines(new_key.read_text()) + _pem_lines(rotated_key.read_text())
    needles = [JOC_PASSWORD, VALUE, KEY_PASSWORD, *world.key_lines, *made, *recorder.tokens]
    assert len(recorder.tokens) >= 5  # JOC was logged in to by several commands
    keystore = world.repo.path / ".js7certctl" / "keystore.db"
    assert _mode(keystore) == 0o600
    assert _mode(keystore.parent) == 0o700
    blobs: dict[str, str] = {
        "keystore": keystore.read_bytes().decode("latin-1"),
        **{f"plan {p.name}": p.read_text() for p in out.glob("plan-*.json")},
        "logs": "\n".join(recorder.logs),
        "children": "\n".join(" ".join(argv) for argv in recorder.children),
        "child environments": "\n".join(
            f"{k}={v}" for env in recorder.child_envs for k, v in env.items()
        ),
    }
    for args, run in recorder.runs:
        blobs[f"js7certctl {' '.join(args)}"] = run.output
    for name, text in blobs.items():
        for needle in needles:
            assert needle not in text, f"a secret appears in: {name}"
    assert recorder.children, "the CLI started no child process: the argv scan saw nothing"
    assert any(argv[0] == "git" or argv[0].endswith("/git") for argv in recorder.children)
    assert recorder.logs, "no log record at all: the log scan saw nothing"
    assert not list(world.repo.path.rglob("*.key"))  # no private key inside the repository


# ----------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_joc(pki: Pki) -> Iterator[JocEmulator]:
    with JocEmulator(tls_cert=pki.server_cert, tls_key=pki.server_key) as joc:
        joc.config.deploy_delay = 0.01
        joc.config.accounts["ci"] = Account(JOC_PASSWORD, ALL_PERMISSIONS)
        yield joc


def _tls_repo(tmp_path: Path, target: str) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.write("js7certctl.yaml", f"targets:\n  prod: {target}\ndefaultTarget: prod\n")
    key = certgen.ec_key("P-256", variant=4)
    repo.write("a.yaml", manifest("agent-a", certificate=certgen.make_cert(key, cn="a")))
    repo.commit()
    return repo


# Variables that turn TLS verification off in other tools (or in Python's urllib).
LOOSENING_ENV = {
    "PYTHONHTTPSVERIFY": "0",
    "CURL_CA_BUNDLE": "",
    "REQUESTS_CA_BUNDLE": "",
    "NODE_TLS_REJECT_UNAUTHORIZED": "0",
    "GIT_SSL_NO_VERIFY": "1",
    "SSL_CERT_DIR": "/nonexistent",
}


def test_tls_verification_is_on_whatever_the_environment_says(
    tls_joc: JocEmulator, tmp_path: Path
) -> None:
    repo = _tls_repo(tmp_path, f'{{backend: joc, url: "{tls_joc.base_url}"}}')
    run = run_cli("plan", "--repo", str(repo.path), env={**ENV, **LOOSENING_ENV})
    assert run.exit_code == 1
    assert f"cannot verify the TLS certificate of JOC at {tls_joc.base_url}" in run.stderr
    assert tls_joc.calls == []  # not even the version was asked: nothing was sent


@pytest.mark.parametrize("field", ["insecure: true", "verify: false", "tlsVerify: false"])
def test_the_config_cannot_turn_tls_verification_off(
    tls_joc: JocEmulator, tmp_path: Path, field: str
) -> None:
    repo = _tls_repo(tmp_path, f'{{backend: joc, url: "{tls_joc.base_url}", {field}}}')
    run = run_cli("plan", "--repo", str(repo.path), env=ENV)
    assert run.exit_code == 1
    assert "[unknown-field]" in run.stderr
    assert tls_joc.calls == []


def test_a_saved_plan_never_carries_insecure_and_quiet_never_hides_the_warning(
    tls_joc: JocEmulator, tmp_path: Path
) -> None:
    repo = _tls_repo(tmp_path, f'{{backend: joc, url: "{tls_joc.base_url}"}}')
    plan = tmp_path / "plan.json"
    run = run_cli(
        "plan", "--repo", str(repo.path), "--insecure", "--quiet", "--out", str(plan), env=ENV
    )
    assert run.exit_code == 0, run.stderr
    warning = "Warning: TLS certificate verification is turned off (--insecure)"
    assert warning in run.stderr
    assert "insecure" not in plan.read_text().lower()
    # Applying the plan verifies TLS again unless --insecure is given again (with the warning).
    run = run_cli("apply", str(plan), env=ENV)
    assert run.exit_code == 1
    assert "cannot verify the TLS certificate" in run.stderr
    assert tls_joc.state.certificates == {}
    run = run_cli("apply", str(plan), "--insecure", "--quiet", env=ENV)
    assert run.exit_code == 0, run.stderr
    assert warning in run.stderr
    assert sorted(tls_joc.state.certificates) == ["agent-a"]


def test_plain_http_is_never_silent(joc: JocEmulator, tmp_path: Path) -> None:
    repo = _tls_repo(tmp_path, f'{{backend: joc, url: "{joc.base_url}"}}')
    run = run_cli("plan", "--repo", str(repo.path), "--quiet", env=ENV)
    assert run.exit_code == 0, run.stderr
    assert "is plain http://" in run.stderr


def test_the_embedded_keystore_files_are_private(tmp_path: Path) -> None:
    repo = _tls_repo(tmp_path, "{backend: local}")
    os.umask(0o022)
    run = run_cli("apply", "--repo", str(repo.path), "--auto-approve")
    assert run.exit_code == 0, run.stderr
    folder = repo.path / ".js7certctl"
    assert _mode(folder) == 0o700
    assert _mode(folder / "keystore.db") == 0o600
    assert _mode(folder / "keystore.db.lock") == 0o600
    assert [e.alias for e in LocalKeystore(folder / "keystore.db").list_entries()] == ["agent-a"]
    shutil.rmtree(folder)
