"""`secrets scan` and the scanner behind it: enc: values in YAML and JSON, JS7 inventory
references, and which alias each value is for (by reference, or by the key that opens it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from js7certctl import secretio
from js7certctl.envelope import Encryptor, load_public_key, parse_value
from js7certctl.secrets import (
    Scan,
    ScannedFile,
    attribute,
    format_path,
    inventory_type,
    opens,
    references,
    scan_bytes,
)
from tests import certgen
from tests.helpers import GitRepo
from tests.lifecycle import (
    PAYMENTS,
    PLAINTEXTS,
    REPORTING,
    Lifecycle,
    build,
    expression,
    jackson,
)


@pytest.fixture
def lifecycle(repo: GitRepo, tmp_path: Path) -> Lifecycle:
    return build(repo, tmp_path)


def _value(key: object = None, text: str = "x") -> str:
    cert = certgen.make_cert(key or certgen.rsa_key(2048), cn="v")  # type: ignore[arg-type]
    return Encryptor(load_public_key(cert.encode())[0]).encrypt(text.encode()).to_string()


def _scanned(path: str, text: str) -> ScannedFile:
    result = scan_bytes(path, text.encode("utf-8"))
    assert isinstance(result, ScannedFile), result
    return result


def _no_plaintext(*texts: str) -> None:
    for text in texts:
        for secret in PLAINTEXTS.values():
            assert secret not in text


# ----------------------------------------------------------------------------------- the CLI

EXPECTED_INFERRED = [
    f"inventory/Payments/Database.jobresource.json:5 arguments.db_password {PAYMENTS}",
    f"inventory/Payments/Database.jobresource.json:6 arguments.smtp_password {PAYMENTS}",
    f"inventory/Payments/pay-invoices.workflow.json:9 orderPreparation.parameters.pin.default "
    f"{PAYMENTS}",
    f"inventory/Payments/pay-invoices.workflow.json:40 jobs.charge.defaultArguments.api_token "
    f"{PAYMENTS}",
    f"inventory/Reporting/daily-report.workflow.json:21 jobs.report.defaultArguments.key "
    f"{REPORTING}",
    "secrets/api.json:3 api.secret ?",
    "secrets/payments-values.yaml:3 db.user ?",
    "secrets/payments-values.yaml:4 db.password ?",
    "secrets/payments-values.yaml:7 tokens[0] ?",
    "secrets/payments-values.yaml:8 tokens[1] ?",
    "secrets/payments-values.yaml:9 folded ?",
    "secrets/payments-values.yaml:10 anchored ?",
    "secrets/payments-values.yaml:13 wrapped ?",
    "secrets/payments-values.yaml:16 literal ?",
]


def test_scan_lines_infer_the_alias_from_the_inventory(lifecycle: Lifecycle) -> None:
    result = lifecycle.cli("secrets", "scan")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == EXPECTED_INFERRED
    assert "Found 14 enc: value(s) in 5 of 10 YAML and JSON file(s)" in result.stderr
    _no_plaintext(result.stdout, result.stderr)


def test_scan_with_keys_names_the_alias_that_opens_each_value(lifecycle: Lifecycle) -> None:
    result = lifecycle.cli(
        "secrets",
        "scan",
        "--key",
        f"{PAYMENTS}={lifecycle.payments_key_file}",
        "--key",
        f"{REPORTING}={lifecycle.reporting_key_file}",
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == [PAYMENTS] * 4 + [REPORTING] + [
        PAYMENTS
    ] * 9
    assert "none of the given keys" not in result.stderr
    _no_plaintext(result.stdout, result.stderr)


def test_scan_lists_the_values_no_given_key_opens(lifecycle: Lifecycle) -> None:
    result = lifecycle.cli("secrets", "scan", "--key", f"{PAYMENTS}={lifecycle.payments_key_file}")
    assert result.exit_code == 0, result.stderr
    assert (
        "inventory/Reporting/daily-report.workflow.json:21 jobs.report.defaultArguments.key ?"
        in result.stdout.splitlines()
    )
    assert "Warning: none of the given keys opens 1 value(s):" in result.stderr
    assert (
        "  inventory/Reporting/daily-report.workflow.json:21 jobs.report.defaultArguments.key"
        in result.stderr.splitlines()
    )
    report = json.loads(
        lifecycle.cli(
            "secrets",
            "scan",
            "--format",
            "json",
            "--key",
            f"{PAYMENTS}={lifecycle.payments_key_file}",
        ).stdout
    )
    assert [(v["file"], v["line"], v["inferred"]) for v in report["unopened"]] == [
        ("inventory/Reporting/daily-report.workflow.json", 21, REPORTING)
    ]
    assert report["byAlias"] == {"?": 1, PAYMENTS: 13}
    assert report["keys"] == [PAYMENTS]


def test_scan_json_format(lifecycle: Lifecycle) -> None:
    result = lifecycle.cli("secrets", "scan", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["count"] == 14
    assert report["byAlias"] == {"?": 9, PAYMENTS: 4, REPORTING: 1}
    assert report["unopened"] is None
    assert report["filesExamined"] == 10
    assert report["source"]["revision"] == lifecycle.repo.git("rev-parse", "HEAD")
    first = report["values"][0]
    assert first == {
        "file": "inventory/Payments/Database.jobresource.json",
        "line": 5,
        "column": 21,
        "path": "arguments.db_password",
        "alias": PAYMENTS,
        "how": "reference",
        "inferred": PAYMENTS,
        "candidates": [],
        "quoted": True,
        "valid": True,
        "problem": None,
    }
    smtp = report["values"][1]
    assert (smtp["path"], smtp["quoted"]) == ("arguments.smtp_password", False)
    unknown = next(v for v in report["values"] if v["file"] == "secrets/api.json")
    assert (unknown["alias"], unknown["how"], unknown["candidates"]) == (None, None, [])
    _no_plaintext(result.stdout, result.stderr)


def test_scan_reads_a_revision_and_skips_dot_folders_and_unreadable_files(
    lifecycle: Lifecycle,
) -> None:
    repo = lifecycle.repo
    repo.write(".github/secrets.yaml", f"token: {_value()}\n")  # dot-folders are skipped
    repo.write("broken/bad.json", '{"token": "enc:a b c",\n')  # not valid JSON
    repo.write("broken/latin1.yaml", b"token: enc:\xe9\n")  # not UTF-8
    repo.write("broken/damaged.yaml", "token: enc:not base64! x y\n")
    repo.commit("more")
    repo.remove("secrets/api.json")  # only in the working tree
    result = lifecycle.cli("secrets", "scan")
    assert result.exit_code == 0, result.stderr
    assert ".github" not in result.stdout
    assert "secrets/api.json" not in result.stdout
    assert "broken/damaged.yaml:1 token ?" in result.stdout.splitlines()
    assert "Warning: skipped broken/bad.json: not valid JSON (line 2)" in result.stderr
    assert "Warning: skipped broken/latin1.yaml: not UTF-8 text (bad byte at offset 11)" in (
        result.stderr
    )
    assert (
        "broken/damaged.yaml:1 token is not a valid JS7 value: the IV field is not valid Base64"
        in (result.stderr)
    )
    at_head = lifecycle.cli("secrets", "scan", "--ref", "HEAD")
    assert at_head.exit_code == 0, at_head.stderr
    assert "secrets/api.json:3 api.secret ?" in at_head.stdout.splitlines()
    before = lifecycle.cli("secrets", "scan", "--ref", "HEAD~1")
    assert "broken/" not in before.stdout
    assert before.stdout.splitlines() == EXPECTED_INFERRED


def test_scan_usage_errors(lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> None:
    # The seam: whether /dev/tty exists depends on how the tests are run.
    monkeypatch.setattr(secretio, "terminal_available", lambda: False)
    for bad in ("no-equals-sign", "=file", f"{PAYMENTS}="):
        result = lifecycle.cli("secrets", "scan", "--key", bad)
        assert result.exit_code == 64, bad
        assert "--key takes ALIAS=FILE" in result.stderr
    twice = lifecycle.cli("secrets", "scan", "--key", "a=/x", "--key", "a=/y")
    assert twice.exit_code == 64
    assert "names the alias 'a' twice" in twice.stderr
    missing = lifecycle.cli("secrets", "scan", "--key", f"{PAYMENTS}=/nonexistent/key.pem")
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr
    protected = lifecycle.payments_key_file.with_name("protected.key")
    protected.write_text(certgen.private_key_pem(lifecycle.payments_key, password=b"pw"))
    no_terminal = lifecycle.cli("secrets", "scan", "--key", f"{PAYMENTS}={protected}")
    assert no_terminal.exit_code == 1
    assert "is password-protected and there is no terminal" in no_terminal.stderr
    assert "--key-password" not in no_terminal.stderr


def test_scan_warns_when_a_key_does_not_belong_to_the_alias(lifecycle: Lifecycle) -> None:
    result = lifecycle.cli("secrets", "scan", "--key", f"{PAYMENTS}={lifecycle.reporting_key_file}")
    assert result.exit_code == 0
    assert f"does not belong to the certificate of alias '{PAYMENTS}'" in result.stderr
    assert result.stdout.splitlines()[4].endswith(f" {PAYMENTS}")  # the reporting value


# ------------------------------------------------------------------------------------ scanner


def test_json_spans_lines_and_paths_are_exact() -> None:
    value = _value()
    escaped = value.replace("/", "\\/")
    text = (
        "\ufeff{\r\n"
        '  "a b": {"x": [1, "plain", "' + value + '"]},\r\n'
        '  "expr": "\\"' + escaped + '\\"",\r\n'
        '  "single": "\'' + value + "'\",\r\n"
        '  "ünï": "' + value + '  ",\r\n'
        '  "not": "enc:",\r\n'
        '  "inside": "say enc:x"\r\n'
        "}\r\n"
    )
    scanned = _scanned("values.json", text)
    assert scanned.bom == "\ufeff"
    found = [(v.line, v.column, v.path, v.quote, v.inner == value) for v in scanned.values]
    assert found == [
        (2, 29, '["a b"].x[2]', "", True),
        (3, 11, "expr", '"', True),
        (4, 13, "single", "'", True),
        (5, 10, "ünï", "", True),
        (6, 10, "not", "", False),
    ]
    for v in scanned.values:
        raw = scanned.text[v.start : v.end]
        assert json.loads(raw) == v.full
    assert scanned.values[3].full == value + "  "


def test_yaml_styles_anchors_merges_and_documents() -> None:
    value = _value()
    text = (
        "base: &b\n"
        f"  shared: {value}\n"
        "a:\n"
        "  <<: *b\n"
        f'  quoted: "{value}"  # comment\n'
        f"  single: '\"{value}\"'\n"
        f"  tagged: !!str {value}\n"
        f'  flow: {{x: "{value}"}}\n'
        "  block: |-\n"
        f"    {value}\n"
        "---\n"
        f"- {value}\n"
    )
    scanned = _scanned("v.yaml", text)
    found = [(v.line, v.path, v.style, v.quote) for v in scanned.values]
    assert found == [
        (2, "base.shared", "", ""),
        (5, "a.quoted", '"', ""),
        (6, "a.single", "'", '"'),
        (7, "a.tagged", "", ""),
        (8, "a.flow.x", '"', ""),
        (9, "a.block", "|", ""),
        (12, "[0]", "", ""),
    ]
    tagged = scanned.values[3]
    assert scanned.text[tagged.start : tagged.end] == value  # the tag is not part of the span


def test_files_without_markers_are_not_parsed_and_invalid_ones_are_reported() -> None:
    assert scan_bytes("a.json", b"{ not json, but no marker either") is None
    assert scan_bytes("a.yaml", b"key: value\n") is None
    assert scan_bytes("a.json", b'{"enc": "not a value"}') is None
    assert scan_bytes("a.yaml", b"a: [" * 600 + b"enc:") == "nested more than 500 levels deep"
    assert scan_bytes("a.yaml", b"a: b: enc:x\n") == "not valid YAML at line 1"
    assert scan_bytes("big.json", b" " * (16 * 1024 * 1024 + 1)) == "larger than 16 MiB"


def test_inventory_names() -> None:
    assert inventory_type("inv/Payments/pay.workflow.json") == ("workflow", "pay")
    assert inventory_type("a.b.jobresource.json") == ("jobresource", "a.b")
    assert inventory_type("x/y.jobtemplate.json") == ("jobtemplate", "y")
    assert inventory_type("x/y.json") is None
    assert inventory_type("x/.workflow.json") is None
    assert inventory_type("x/y.workflow.json.sig") is None
    assert format_path(()) == "(top)"
    assert format_path(("jobs", "a.b", 3, "x")) == 'jobs["a.b"][3].x'


def _inventory_scan(*files: tuple[str, object]) -> Scan:
    scan = Scan()
    for path, document in files:
        scanned = scan_bytes(path, jackson(document).encode())
        if isinstance(scanned, ScannedFile):
            scan.files.append(scanned)
    return scan


def test_inference_by_workflow_job_and_job_resource() -> None:
    key = certgen.rsa_key(2048)
    value = expression(_value(key))
    scan = _inventory_scan(
        ("inv/Secrets.jobresource.json", {"TYPE": "JobResource", "arguments": {"s": value}}),
        (
            "inv/w1.workflow.json",
            {
                "TYPE": "Workflow",
                "jobResourceNames": ["alias-a"],
                "orderPreparation": {"parameters": {"p": {"default": value}}},
                "jobs": {
                    "j1": {"jobResourceNames": ["Secrets"], "defaultArguments": {"t": value}},
                    "j2": {"jobResourceNames": ["alias-b"], "defaultArguments": {"t": value}},
                },
            },
        ),
        (
            "inv/w2.workflow.json",
            {
                "TYPE": "Workflow",
                "orderPreparation": {"parameters": {"p": {"default": value}}},
                "jobs": {"j": {"jobResourceNames": ["alias-a"]}},
            },
        ),
    )
    found = {
        (v.file, v.path): (a.alias, a.candidates)
        for v, a in attribute(scan, encipherment={"alias-a", "alias-b"})
    }
    assert found == {
        ("inv/Secrets.jobresource.json", "arguments.s"): ("alias-a", ()),  # through w1/j1
        ("inv/w1.workflow.json", "orderPreparation.parameters.p.default"): ("alias-a", ()),
        ("inv/w1.workflow.json", "jobs.j1.defaultArguments.t"): ("alias-a", ()),
        # j2 has both: its own alias-b and the workflow's alias-a
        ("inv/w1.workflow.json", "jobs.j2.defaultArguments.t"): (None, ("alias-a", "alias-b")),
        # no references around the value: those of the whole object count
        ("inv/w2.workflow.json", "orderPreparation.parameters.p.default"): ("alias-a", ()),
    }
    # A wrapped key that does not fit the alias's certificate is not attributed to it.
    other = certgen.ec_key("P-256").public_key()
    mismatch = attribute(scan, encipherment={"alias-a"}, public_keys_of=lambda _a: [other])
    assert {a.alias for _, a in mismatch} == {None}
    fitting = attribute(
        scan, encipherment={"alias-a"}, public_keys_of=lambda _a: [key.public_key()]
    )
    assert sum(1 for _, a in fitting if a.alias == "alias-a") == 5


def test_references_name_objects_and_jobs() -> None:
    scan = _inventory_scan(
        (
            "inv/Pay/pay.workflow.json",
            {
                "TYPE": "Workflow",
                "jobResourceNames": ["alias-a"],
                "instructions": [
                    {"TYPE": "Execute.Anonymous", "job": {"jobResourceNames": ["alias-a"]}}
                ],
                "jobs": {"charge": {"jobResourceNames": ["DB", "alias-a"]}},
            },
        ),
        ("inv/t.jobtemplate.json", {"TYPE": "JobTemplate", "jobResourceNames": ["alias-a"]}),
    )
    refs = references(scan)
    assert [r.describe() for r in refs["alias-a"]] == [
        "workflow pay (inv/Pay/pay.workflow.json:4)",
        "job instructions[0].job of workflow pay (inv/Pay/pay.workflow.json:11)",
        "job charge of workflow pay (inv/Pay/pay.workflow.json:20)",
        "job template t (inv/t.jobtemplate.json:4)",
    ]
    assert [r.job for r in refs["DB"]] == ["charge"]


def test_opens_only_with_the_right_key() -> None:
    key, other_rsa, ec_key = (
        certgen.rsa_key(2048),
        certgen.rsa_key(2048, variant=1),
        certgen.ec_key("P-256"),
    )
    value = parse_value(_value(key, "text-ü"))
    assert opens(key, value) == "text-ü".encode()
    assert opens(other_rsa, value) is None
    assert opens(ec_key, value) is None  # the wrong shape: not even tried
    ec_value = parse_value(_value(ec_key, "e"))
    assert opens(ec_key, ec_value) == b"e"
    assert opens(certgen.ec_key("P-256", variant=1), ec_value) is None
    assert opens(key, ec_value) is None


@pytest.mark.parametrize(
    "text",
    [
        # workflow-level names after the jobs, a name with an escape, a string that mentions
        # the key, non-string names
        '{"jobs": {"a": {"jobResourceNames": ["x", "y\\u00e9"]}},\n'
        ' "note": "\\"jobResourceNames\\": [\\"z\\"]",\n'
        ' "jobResourceNames": [\n  "w", 1, null\n ]}\n',
        # the same key twice in one mapping: the text and the parsed document disagree
        '{"jobResourceNames": ["a"],\n "jobResourceNames": ["b"]}\n',
        '[{"jobResourceNames": []}, {"x": {"jobResourceNames": ["c"]}}]',
    ],
)
def test_the_fast_path_finds_the_same_references_as_the_tokenizer(text: str) -> None:
    fast = _scanned("inv/w.workflow.json", text)
    assert not fast.values
    exact = _scanned("inv/w.workflow.json", text.replace("{", f'{{"v": "{_value()}", ', 1))
    assert exact.values  # a value in the file: the tokenizer ran

    def described(scanned: ScannedFile) -> list[tuple[str, list[str]]]:
        scan = Scan(files=[scanned])
        return sorted(
            (name, [r.describe() for r in refs]) for name, refs in references(scan).items()
        )

    assert described(fast) == described(exact)
