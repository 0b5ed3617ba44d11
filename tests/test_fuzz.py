"""Fuzzing the readers of user input: manifests, the config and plan files.

Arbitrary bytes, YAML-ish text from a small grammar (the schema's keys, scalars of every type,
flow and block collections, anchors, aliases, tags, directives, tabs and stray brackets) and
mutations of a valid manifest go through the real loaders. They may only ever answer with the
tool's own problems (each with a path, a 1-based line and column, a rule and a message) or raise
the tool's own errors: never any other exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from js7certctl.config import Policy, parse_config
from js7certctl.errors import Js7CertCtlError, PlanFileError
from js7certctl.manifest import LoadResult, alias_problem, load_manifests
from js7certctl.model import Problem
from js7certctl.planfile import plan_from_json, read_plan
from js7certctl.source import SourceInfo, WorktreeSource
from tests import certgen

NOW = datetime.now(UTC)
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_CERT = certgen.make_cert(certgen.rsa_key(2048), cn="agent-fuzz", days=400)
_CERT_INDENTED = "\n".join("    " + line for line in _CERT.splitlines())
VALID_MANIFEST = (
    "apiVersion: js7certctl/v1\n"
    "kind: EncryptionCertificate\n"
    "metadata:\n"
    "  alias: agent-fuzz\n"
    "  labels: {team: payments}\n"
    "  previousAliases: [agent-old]\n"
    "spec:\n"
    "  privateKeyPath: /var/sos-berlin.com/js7/agent/config/private/agent-fuzz.key\n"
    "  jobResourceFolder: /Encryption\n"
    "  agents: [agent-001, subagent-002]\n"
    "  certificate: |\n"
    f"{_CERT_INDENTED}\n"
)
VALID_CONFIG = (
    "manifests: [certs/]\n"
    "defaults: {jobResourceFolder: /Encryption}\n"
    "policy:\n"
    "  expiryWarningDays: 30\n"
    "  minRsaBits: 2048\n"
    '  protect: ["prod-*"]\n'
    "  prune: true\n"
    '  scope: ["*"]\n'
    "  maxDeletes: 10\n"
    "targets:\n"
    "  local: {backend: local, path: .js7certctl/keystore.db}\n"
    '  prod: {backend: joc, url: "https://joc.example.com:4443", caBundle: ca.pem}\n'
    "defaultTarget: local\n"
)

# ----------------------------------------------------------------------------- strategies

KEYS = [
    "apiVersion",
    "kind",
    "metadata",
    "alias",
    "labels",
    "previousAliases",
    "spec",
    "certificate",
    "certificateFile",
    "privateKeyPath",
    "jobResourceFolder",
    "agents",
    "manifests",
    "defaults",
    "policy",
    "targets",
    "backend",
    "url",
    "path",
    "scope",
    "protect",
    "maxDeletes",
    "prune",
    "defaultTarget",
    "local",
    "<<",
]
SCALARS = [
    "js7certctl/v1",
    "EncryptionCertificate",
    "agent-001",
    "/Encryption",
    "/var/key",
    "a.crt",
    "../../etc/passwd",
    "/etc/hostname",
    "true",
    "no",
    "~",
    "null",
    "0x1F",
    "1e999",
    "-.inf",
    ".nan",
    "2001-12-14",
    "12:30:45",
    "'quoted'",
    '"esc\\x01\\u00e9\\t"',
    '"\\ud800"',
    "|",
    ">-",
    "&anchor value",
    "*anchor",
    "*nowhere",
    "!!str 5",
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "!local tag",
    "[",
    "]",
    "{",
    "}",
    "-----BEGIN CERTIFICATE-----",
    "-----BEGIN PRIVATE KEY-----",
    "\t",
    "\x00",
    "\x07",
    "\ufeff",
    "",
]


@st.composite
def yamlish(draw: st.DrawFn, depth: int = 0) -> str:
    """Text built from YAML's pieces, mostly but not always well-formed."""
    kind = draw(
        st.sampled_from(["map", "seq", "flow", "scalar", "raw"] if depth < 4 else ["scalar"])
    )
    indent = " " * (2 * depth + draw(st.sampled_from([0, 0, 0, 1])))
    if kind == "scalar":
        return draw(st.one_of(st.sampled_from(SCALARS), st.text(max_size=12)))
    if kind == "raw":
        return draw(
            st.sampled_from(["---", "...", "%YAML 1.2\n---", "%TAG ! tag:x,2000:\n---", "? x\n: y"])
        )
    if kind == "flow":
        items = draw(st.lists(st.sampled_from(SCALARS + KEYS), max_size=4))
        if draw(st.booleans()):
            return "[" + ", ".join(items) + draw(st.sampled_from(["]", "", "]]"]))
        return "{" + ", ".join(f"{k}: {k}" for k in items) + draw(st.sampled_from(["}", ""]))
    entries = draw(
        st.lists(
            st.tuples(st.sampled_from(KEYS), st.deferred(lambda: yamlish(depth + 1))), max_size=5
        )
    )
    lines = []
    for key, value in entries:
        lead = f"{indent}- " if kind == "seq" else f"{indent}{key}:"
        if "\n" in value or draw(st.booleans()):
            lines.append(f"{lead}\n{value}" if kind == "map" else f"{lead}{value}")
        else:
            lines.append(f"{lead} {value}")
    return "\n".join(lines)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """A valid document with a few random edits: characters, lines, indentation."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "char", "insert"]))
        line = lines[index]
        if edit == "delete":
            del lines[index]
        elif edit == "duplicate":
            lines.insert(index, line)
        elif edit == "indent":
            lines[index] = draw(st.sampled_from([" ", "\t", "   "])) + line
        elif edit == "dedent":
            lines[index] = line.lstrip()
        elif edit == "char" and line:
            at = draw(st.integers(0, len(line) - 1))
            lines[index] = line[:at] + draw(st.characters()) + line[at + 1 :]
        else:
            lines.insert(index, draw(st.sampled_from(SCALARS + [f"{k}: {k}" for k in KEYS])))
    return "\n".join(lines)


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Deep nesting of every kind, up to past the depth where the C parser crashes (notes.md)."""
    opener = draw(st.sampled_from(["[", "{a: ", "- ", "? ", "- [", "a:\n "]))
    depth = draw(st.sampled_from([10, 65, 999, 1001, 2001, 30_000]))
    return opener * depth + draw(st.sampled_from(["", "x", "]" * depth, "\n"]))


def manifest_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=600),
        nested().map(str.encode),
        yamlish().map(lambda t: t.encode("utf-8", "surrogatepass")),
        mutated(VALID_MANIFEST).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


def config_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=600),
        yamlish().map(lambda t: t.encode("utf-8", "surrogatepass")),
        mutated(VALID_CONFIG).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


# ----------------------------------------------------------------------------- checks


def _check_problems(problems: list[Problem], paths: set[str]) -> None:
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.path in paths, problem
        assert problem.line >= 1, problem
        assert problem.column >= 1, problem
        assert problem.rule, problem
        assert problem.message.strip(), problem
        assert "Traceback" not in problem.message


def _error_of(call: Callable[[], bool]) -> Js7CertCtlError | None:
    """The tool's own error ``call`` raised, or None when it returned True; any other exception
    propagates and fails the test."""
    try:
        assert call()
    except Js7CertCtlError as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "a.crt").write_text(_CERT)
    return path


def _load(folder: Path, data: bytes) -> LoadResult | Js7CertCtlError:
    (folder / "m.yaml").write_bytes(data)
    source = WorktreeSource(
        folder, SourceInfo(repository=None, revision=None, ref=None, dirty=False)
    )
    try:
        return load_manifests(
            source,
            base="",
            entries=["."],
            config_path=None,
            job_resource_folder="/Encryption",
            policy=Policy(),
            now=NOW,
        )
    except Js7CertCtlError as exc:  # the tool's own errors are allowed; anything else fails
        return exc


@FUZZ
@given(data=manifest_inputs())
def test_the_manifest_loader_answers_arbitrary_input_with_problems(
    folder: Path, data: bytes
) -> None:
    result = _load(folder, data)
    if isinstance(result, Js7CertCtlError):
        assert str(result).strip()
        return
    _check_problems(result.problems, {"m.yaml", "a.crt"})
    for cert in result.certs:  # what would be sent: one valid alias, one public block
        assert alias_problem(cert.alias) is None
        assert cert.certificate.count("-----BEGIN ") == 1
        assert "PRIVATE KEY" not in cert.certificate


@FUZZ
@given(data=config_inputs())
def test_the_config_parser_answers_arbitrary_input_with_problems(data: bytes) -> None:
    config, problems = parse_config(data, "js7certctl.yaml")
    _check_problems(problems, {"js7certctl.yaml"})
    assert list(config.problems) == problems
    for name in [None, *config.targets, "prod", "nowhere"]:

        def backend_known(name: str | None = name) -> bool:
            return config.target(name).backend in ("local", "joc")

        error = _error_of(backend_known)
        assert error is None or str(error).strip()


PLAN_SKELETON: dict[str, object] = {
    "kind": "js7certctl-plan",
    "format_version": 1,
    "tool_version": "0",
    "created": "2026-01-01T00:00:00+00:00",
    "source": {"repository": None, "ref": None, "revision": None, "dirty": False, "base": ""},
    "target": {"name": "local", "backend": "local", "location": "/k.db", "connection": {}},
    "guards": {
        "scope": ["*"],
        "protect": [],
        "prune": True,
        "maxDeletes": 10,
        "allowMassDelete": False,
    },
    "summary": {"add": 0, "change": 0, "delete": 0, "unchanged": 0},
    "changes": [],
    "warnings": [],
    "live_fingerprint": {"algorithm": "sha256", "entries": {}},
}

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["create", "delete", "update", "rename", "2026-01-01", _CERT]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def plan_documents(draw: st.DrawFn) -> object:
    """A plan skeleton with some fields replaced by arbitrary JSON values, or any JSON."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON_VALUES)
    plan = json.loads(json.dumps(PLAN_SKELETON))
    for key in draw(st.lists(st.sampled_from(sorted(plan)), max_size=3)):
        plan[key] = draw(JSON_VALUES)
    return plan


@FUZZ
@given(document=plan_documents())
def test_the_plan_reader_answers_arbitrary_json_with_plan_file_errors(document: object) -> None:
    error = _error_of(lambda: plan_from_json(document, "plan.json") is not None)
    assert error is None or (
        isinstance(error, PlanFileError) and str(error).startswith("plan.json")
    )


@FUZZ
@given(data=st.binary(max_size=400))
def test_the_plan_reader_answers_arbitrary_bytes_with_plan_file_errors(
    folder: Path, data: bytes
) -> None:
    path = folder / "plan.json"
    path.write_bytes(data)
    error = _error_of(lambda: read_plan(path) is not None)
    assert error is None or (isinstance(error, PlanFileError) and str(path) in str(error))
