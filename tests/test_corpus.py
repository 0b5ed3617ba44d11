"""The bad-input corpus: every case in ``tests/corpus/`` through the real CLI.

Each case is a folder holding the files of a small repository and an ``expected.json`` that says
what must happen (see ``tests/corpus/README.md``). The test builds a real Git repository from the
case in ``tmp_path``, seeds the embedded keystore with one alias, and runs ``validate`` (on the
working tree and at ``--ref HEAD``), ``plan`` and ``apply --auto-approve`` on it, or for plan-file
cases ``apply PLANFILE`` and ``show PLANFILE``. Every run must exit 1 with the one expected
problem (path, line, column, rule, message), print no traceback and no key material, and leave
the repository, the keystore and every other file exactly as they were.

Heavy cases (the 20 MB file, the alias bomb, deep nesting, a 300 MB sparse certificate file) run
as child processes, each bounded in peak memory (``wait4`` reports the child's own peak RSS) and in
wall time (a safety bound, not a benchmark: the child is killed and the test fails after it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog
from tests import certgen
from tests.helpers import GIT_ENV, PROJECT_ROOT, GitRepo, run_cli

CORPUS = Path(__file__).parent / "corpus"
CASE_NAMES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.json").is_file())

MAX_RSS_KB = 300 * 1024  # safety bound for one heavy run's peak memory
MAX_SECONDS = 10.0  # safety bound for one heavy run's wall time
SEEDED_ALIAS = "agent-old"  # in the keystore before every run; a valid plan would delete it

_PROBLEM = re.compile(
    r"^(?P<path>[^\s:][^:\n]*):(?P<line>\d+):(?P<column>\d+): error: (?P<message>.*) "
    r"\[(?P<rule>[a-z0-9-]+)\]$",
    re.MULTILINE,
)
_PLACEHOLDER = re.compile(r"\{\{(?P<name>[a-z0-9_]+)(?:\|(?P<indent>\d+))?\}\}")


# ----------------------------------------------------------------------------- materials


@functools.cache
def _csr() -> str:
    key = certgen.rsa_key(2048)
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-a")]))
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _body(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def _relabel(pem: str, begin: str, end: str) -> str:
    lines = pem.splitlines()
    return "\n".join([begin, *lines[1:-1], end]) + "\n"


@functools.cache
def material(name: str) -> str:
    """The text a ``{{name}}`` placeholder stands for (certificates made fresh per test run)."""
    cert = certgen.make_cert(certgen.rsa_key(2048), cn="agent-a", days=400)
    key = certgen.rsa_key(2048)
    makers: dict[str, Callable[[], str]] = {
        "cert": lambda: cert,
        "cert2": lambda: certgen.make_cert(certgen.ec_key("P-256"), cn="agent-ca", days=400),
        "key": lambda: certgen.private_key_pem(key),
        "rsa_key": lambda: certgen.private_key_pem(key, fmt="traditional"),
        "encrypted_key": lambda: certgen.private_key_pem(key, password=b"corpus-secret"),
        "csr": _csr,
        "cert_bad_base64": lambda: cert.replace(
            _body(cert)[4], _body(cert)[4][:30] + "!" + _body(cert)[4][31:]
        ),
        "cert_truncated": lambda: "\n".join(cert.splitlines()[:8]) + "\n",
        "cert_cut_short": lambda: "\n".join(cert.splitlines()[:3] + cert.splitlines()[7:]) + "\n",
        "cert_wrong_header": lambda: _relabel(
            cert, "-----BEGIN CERTIFCATE-----", "-----END CERTIFCATE-----"
        ),
        "cert_lower_case": lambda: _relabel(
            cert, "-----BEGIN certificate-----", "-----END certificate-----"
        ),
        "cert_four_dashes": lambda: _relabel(
            cert, "----BEGIN CERTIFICATE----", "----END CERTIFICATE----"
        ),
        "cert_mismatched_footer": lambda: _relabel(
            cert, "-----BEGIN CERTIFICATE-----", "-----END PUBLIC KEY-----"
        ),
        "cert_body": lambda: "\n".join(_body(cert)) + "\n",
        "cert_expired": lambda: certgen.make_cert(certgen.rsa_key(2048), cn="agent-a", days=-10),
        "cert_rsa1024": lambda: certgen.make_cert(certgen.rsa_key(1024), cn="agent-a", days=400),
        "cert_ed25519": lambda: certgen.make_cert(certgen.ed25519_key(), cn="agent-a", days=400),
    }
    return makers[name]()


SECRET_MATERIALS = ("key", "rsa_key", "encrypted_key")


def secret_lines() -> list[str]:
    """Base64 lines of every private key the corpus plants: none may ever be printed."""
    return [line for name in SECRET_MATERIALS for line in _body(material(name))]


def _billion_laughs() -> bytes:
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, 10):
        refs = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


GENERATORS: dict[str, Callable[[], bytes]] = {
    # 20 MB of comment lines: a YAML file that would parse, were it not too large.
    "big_20mb": lambda: (
        b"# padding padding padding padding padding padding padding padding\n"
        * (20 * 1024 * 1024 // 66 + 1)
    ),
    "big_2mb": lambda: (
        b"# padding padding padding padding padding padding padding padding\n"
        * (2 * 1024 * 1024 // 66 + 1)
    ),
    "billion_laughs": _billion_laughs,
    "deep_brackets": lambda: b"[" * 100_000,
    "deep_braces": lambda: b"{a: " * 100_000,
    "deep_dashes": lambda: b"- " * 100_000 + b"x\n",
    "deep_block": lambda: "".join(f"{' ' * i}k{i}:\n" for i in range(1000)).encode(),
    "der_cert": lambda: certgen.der_cert(certgen.rsa_key(2048), cn="agent-a", days=400),
}
# Generated after the commit, as untracked files: too large to hash into Git in every run.
SPARSE = {"sparse_300mb": 300 * 1024 * 1024}


def render(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        value = material(match.group("name"))
        indent = match.group("indent")
        if indent is None:
            return value
        return "\n".join(" " * int(indent) + line for line in value.rstrip("\n").splitlines())

    return _PLACEHOLDER.sub(replace, text)


# ----------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    message: str
    path: str
    rule: str | None = None
    line: int | None = None
    column: int | None = None
    exit: int = 1
    errors: int = 1
    heavy: bool = False
    run: str = "manifests"  # or "plan-file"
    located: bool = False  # plan-file errors: the message names plan.json:LINE:COLUMN
    commands: list[Any] = field(default_factory=list)
    also: list[str] = field(default_factory=list)  # more commands: "validate-ref", "apply"
    setup: list[list[str]] = field(default_factory=list)
    edit: str | None = None
    generate: dict[str, str] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)
    fifos: list[str] = field(default_factory=list)  # named pipes, made after the commit

    @classmethod
    def load(cls, name: str) -> Case:
        data = json.loads((CORPUS / name / "expected.json").read_text(encoding="utf-8"))
        return cls(name=name, **data)


@dataclass
class Built:
    tmp: Path
    repo: Path
    plan: Path
    keystore: Path


def build(case: Case, tmp_path: Path) -> Built:
    """The case as a real Git repository, with a seeded keystore beside it (not committed)."""
    repo = GitRepo(tmp_path / "repo")
    source = CORPUS / case.name
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or rel.as_posix() == "expected.json":
            continue
        data = path.read_bytes()
        with contextlib.suppress(UnicodeDecodeError):  # binary cases are copied byte for byte
            data = render(data.decode("utf-8")).encode("utf-8")
        repo.write(rel.as_posix(), data)
    for name, text in case.outside.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(text), encoding="utf-8")
    for name, generator in case.generate.items():
        if generator not in SPARSE:
            repo.write(name, GENERATORS[generator]())
    for name, link in case.symlinks.items():
        os.symlink(link, repo.path / name)
    (repo.path / ".git" / "info" / "exclude").write_text(".js7certctl/\n")
    repo.commit("the case")
    for name, generator in case.generate.items():
        if generator in SPARSE:
            with open(repo.path / name, "wb") as handle:
                handle.truncate(SPARSE[generator])
    for name in case.fifos:
        os.mkfifo(repo.path / name)
    keystore = repo.path / ".js7certctl" / "keystore.db"
    with LocalKeystore(keystore) as store:
        store.store(
            SEEDED_ALIAS,
            certgen.make_cert(certgen.ec_key("P-256"), cn=SEEDED_ALIAS, days=400),
            "/var/keys/agent-old.key",
            "/Encryption",
            AuditLog(comment="seeded by the corpus test"),
        )
    return Built(tmp=tmp_path, repo=repo.path, plan=tmp_path / "plan.json", keystore=keystore)


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every file, folder and symlink under ``root`` (Git's stat cache ``.git/index`` aside)."""
    state: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel.endswith(".git/index"):
                continue
            info = path.lstat()
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = ("dir", info.st_mode)
            elif not stat.S_ISREG(info.st_mode) or info.st_size > 1024 * 1024:
                state[rel] = ("file", info.st_mode, info.st_size, info.st_mtime_ns)
            else:
                state[rel] = ("file", info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return state


# ----------------------------------------------------------------------------- plan-file edits


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(data), indent=2), encoding="utf-8")


def _first_after(data: Any) -> Any:
    return next(c["after"] for c in data["changes"] if c.get("after"))


def _set(data: Any, key: str, value: Any) -> Any:
    data[key] = value
    return data


def _certificate_with_key(data: Any) -> Any:
    after = _first_after(data)
    after["certificate"] = after["certificate"] + material("key")
    return data


def _certificate_swapped(data: Any) -> Any:
    _first_after(data)["certificate"] = certgen.make_cert(
        certgen.rsa_key(2048, variant=1), cn="intruder", days=400
    )
    return data


def _alias_invalid(data: Any) -> Any:
    change = next(c for c in data["changes"] if c.get("after"))
    change["alias"] = change["after"]["alias"] = "../../etc/agent a"
    return data


def _action_unknown(data: Any) -> Any:
    data["changes"][0]["action"] = "explode"
    return data


def _location_elsewhere(data: Any) -> Any:
    data["target"]["location"] = "/somewhere/else/keystore.db"
    return data


def _without(data: Any, key: str) -> Any:
    data.pop(key)
    return data


def _write_text(text: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return edit


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _latin1(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b'"js7certctl-plan"', b'"plan\xe9"'))


EDITS: dict[str, Callable[[Path], None]] = {
    "garbage": _write_text("this is not JSON {\n"),
    "truncate": _truncate,
    "empty": _write_text(""),
    "latin1": _latin1,
    "json-list": _write_text("[]\n"),
    "format-version-99": lambda p: _edit_json(p, lambda d: _set(d, "format_version", 99)),
    "format-version-missing": lambda p: _edit_json(p, lambda d: _without(d, "format_version")),
    "changes-string": lambda p: _edit_json(p, lambda d: _set(d, "changes", "everything")),
    "action-unknown": lambda p: _edit_json(p, _action_unknown),
    "certificate-with-private-key": lambda p: _edit_json(p, _certificate_with_key),
    "certificate-swapped": lambda p: _edit_json(p, _certificate_swapped),
    "alias-invalid": lambda p: _edit_json(p, _alias_invalid),
    "location-elsewhere": lambda p: _edit_json(p, _location_elsewhere),
}


# ----------------------------------------------------------------------------- running


@dataclass
class Outcome:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    max_rss_kb: int | None = None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_measured(argv: list[str], cwd: Path) -> Outcome:
    """``python -m js7certctl ARGV`` as a child process, with its own peak RSS (``wait4``)."""
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(PROJECT_ROOT)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "js7certctl", *argv], cwd=cwd, env=env, stdout=out, stderr=err
        )
        deadline = time.monotonic() + MAX_SECONDS
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"js7certctl {' '.join(argv)} ran longer than {MAX_SECONDS} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(
            argv,
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_maxrss,
        )


def run_inline(argv: list[str]) -> Outcome:
    result = run_cli(*argv)
    return Outcome(argv, result.exit_code, result.stdout, result.stderr)


@pytest.fixture(autouse=True)
def _build_the_cli_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer's test runner rebuilds the Click command from the app on every call (about 40 ms);
    the corpus runs hundreds, so the command is built once. Only the test runner's lookup
    changes: the command and its error boundary are the real ones."""
    monkeypatch.setattr(typer.testing, "_get_command", _cli_command)


@functools.cache
def _cli_command(app: Any) -> Any:
    return typer.main.get_command(app)


MANIFEST_COMMANDS = {
    "validate": ["validate"],
    "validate-ref": ["validate", "--ref", "HEAD"],
    "plan": ["plan"],
    "apply": ["apply", "--auto-approve"],
}


def commands_of(case: Case, built: Built) -> list[list[str]]:
    if case.run == "plan-file":
        return [[_fill(a, built) for a in cmd] for cmd in case.commands]
    names = case.commands or ["validate", "plan", *case.also]
    return [[*MANIFEST_COMMANDS[name], "--repo", str(built.repo)] for name in names]


def _fill(arg: str, built: Built) -> str:
    return (
        arg.replace("{plan}", str(built.plan))
        .replace("{repo}", str(built.repo))
        .replace("{tmp}", str(built.tmp))
    )


def check(case: Case, outcome: Outcome) -> None:
    where = f"{case.name}: js7certctl {' '.join(outcome.argv)}\n{outcome.output}"
    assert outcome.exit_code == case.exit, where
    assert "Traceback" not in outcome.output, where
    assert "Internal error" not in outcome.output, where
    for line in secret_lines():
        assert line not in outcome.output, f"{where}\nkey material was printed"
    if outcome.max_rss_kb is not None:
        assert outcome.max_rss_kb < MAX_RSS_KB, f"{where}\npeak RSS {outcome.max_rss_kb} kB"
    problems = {m.group(0): m for m in _PROBLEM.finditer(outcome.output)}
    if case.rule is None:
        errors = [line for line in outcome.output.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, where
        assert not problems, where
        assert case.message in errors[0], where
        assert case.path in errors[0], where
        if case.line is not None:
            assert f"{case.path}:{case.line}:" in errors[0], where
        if case.located:
            assert re.search(rf"{re.escape(case.path)}:\d+:\d+: ", errors[0]), where
        return
    assert len(problems) == case.errors, where
    matching = [
        m
        for m in problems.values()
        if m.group("path") == case.path
        and m.group("rule") == case.rule
        and case.message in m.group("message")
        and (case.line is None or int(m.group("line")) == case.line)
        and (case.column is None or int(m.group("column")) == case.column)
    ]
    assert matching, f"{where}\nexpected {case.path}:{case.line}:{case.column} [{case.rule}]"


HEAVY = [name for name in CASE_NAMES if Case.load(name).heavy]


@pytest.mark.parametrize("name", [name for name in CASE_NAMES if name not in HEAVY])
def test_corpus_case(name: str, tmp_path: Path) -> None:
    _run_case(Case.load(name), tmp_path, run_inline)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEAVY)
def test_heavy_corpus_case(name: str, tmp_path: Path) -> None:
    case = Case.load(name)
    _run_case(case, tmp_path, lambda argv: run_measured(argv, tmp_path))


def _run_case(case: Case, tmp_path: Path, runner: Callable[[list[str]], Outcome]) -> None:
    built = build(case, tmp_path)
    for setup in case.setup:
        argv = [_fill(a, built) for a in setup]
        result = run_cli(*argv, "--repo", str(built.repo))
        assert result.exit_code == 0, result.output
    if case.edit is not None:
        EDITS[case.edit](built.plan)
    before = snapshot(tmp_path)
    commands = commands_of(case, built)
    assert commands
    for argv in commands:
        check(case, runner(argv))
        assert snapshot(tmp_path) == before, f"{case.name}: {argv} wrote something"
    assert [e.alias for e in LocalKeystore(built.keystore).list_entries()] == [SEEDED_ALIAS]


def test_the_corpus_is_large_and_documented() -> None:
    assert len(CASE_NAMES) >= 60
    for name in CASE_NAMES:
        case = Case.load(name)
        assert case.about, name
        assert case.message, name
        assert case.path, name
        for generator in case.generate.values():
            assert generator in GENERATORS or generator in SPARSE, name
        if case.edit is not None:
            assert case.edit in EDITS, name
    assert not [p for p in CORPUS.iterdir() if p.is_dir() and p.name not in CASE_NAMES]


def test_a_symlinked_manifest_inside_the_repository_is_read_once(tmp_path: Path) -> None:
    """The positive side of manifest-symlink-*: a symlink to a manifest in the repository is
    followed, and the file it leads to counts once (no duplicate-alias error)."""
    repo = GitRepo(tmp_path / "repo")
    repo.write(
        "certs/a.yaml", render((CORPUS / "duplicate-alias-two-files" / "a.yaml").read_text())
    )
    os.symlink("certs/a.yaml", repo.path / "link.yaml")
    repo.commit()
    for extra in ([], ["--ref", "HEAD"]):
        result = run_cli("validate", "--repo", str(repo.path), *extra)
        assert result.exit_code == 0, result.output
        assert "Validated 1 manifest file (1 certificate)" in result.stdout
