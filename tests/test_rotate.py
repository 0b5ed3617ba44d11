"""`rotate`: a new key and certificate, every value re-encrypted in place, formatting kept."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from js7certctl.envelope import load_private_key
from js7certctl.rotate import (
    RotationError,
    expression_like,
    prepare,
    replace_scalar,
    rewrite_values,
    write,
)
from js7certctl.secrets import ScannedFile, scan_bytes
from js7certctl.workspace import open_workspace
from tests import certgen, js7_reference
from tests.helpers import GitRepo, Run, manifest, run_cli
from tests.lifecycle import (
    NEW_KEY_PATH,
    OLD_KEY_PATH,
    PAYMENTS,
    PLAINTEXTS,
    REPORTING,
    Lifecycle,
    build,
    without_values,
)

PAYMENTS_FILES = [
    "inventory/Payments/Database.jobresource.json",
    "inventory/Payments/pay-invoices.workflow.json",
    "secrets/api.json",
    "secrets/payments-values.yaml",
]
# The payments plaintexts, and "payments" (db.user of the values file: every string is encrypted).
PAYMENTS_PLAINTEXTS = sorted(
    [v for k, v in PLAINTEXTS.items() if k != "reporting.key"] + ["payments"]
)


@pytest.fixture
def lifecycle(repo: GitRepo, tmp_path: Path) -> Lifecycle:
    made = build(repo, tmp_path)
    applied = made.cli("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    return made


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the Git folder and the embedded keystore left out)."""
    found: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", ".js7certctl")]
        for name in names:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def _decrypt_all(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> list[str]:
    scanned = scan_bytes(path.name, path.read_bytes())
    assert isinstance(scanned, ScannedFile)
    return [js7_reference.decrypt(key, v.inner).decode() for v in scanned.values]


def _assert_no_plaintext(*roots: Path, texts: tuple[str, ...] = ()) -> None:
    for text in texts:
        for secret in PLAINTEXTS.values():
            assert secret not in text
    for root in roots:
        for name, data in _files(root).items():
            for secret in PLAINTEXTS.values():
                assert secret.encode() not in data, name


def _rotate(lifecycle: Lifecycle, *args: str) -> Run:
    return lifecycle.cli("rotate", PAYMENTS, "--old-key", str(lifecycle.payments_key_file), *args)


def test_rotate_reencrypts_every_value_and_keeps_the_formatting(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    root = lifecycle.path
    before = _files(root)
    new_key = tmp_path / "keys" / "agent-payments-2027.key"
    result = lifecycle.cli(
        "rotate",
        PAYMENTS,
        "--old-key",
        str(lifecycle.payments_key_file),
        "--key-out",
        str(new_key),
        "--agent-key-path",
        NEW_KEY_PATH,
    )
    assert result.exit_code == 0, result.stderr
    after = _files(root)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == sorted(
        [
            f"certs/{PAYMENTS}.crt",
            f"certs/{PAYMENTS}.yaml",
            f"inventory/Encryption/{PAYMENTS}.jobresource.json",
            *PAYMENTS_FILES,
        ]
    )
    assert sorted(after) == sorted(before)

    # The new key: PKCS#8, unencrypted, 0600, and it belongs to the new certificate.
    assert stat.S_IMODE(new_key.stat().st_mode) == 0o600
    new_private = load_private_key(new_key.read_bytes())
    assert isinstance(new_private, rsa.RSAPrivateKey)  # the old key's type by default
    assert new_private.key_size == 2048
    check = lifecycle.cli("decrypt", "--key", str(new_key), "--check", PAYMENTS)
    assert check.exit_code == 0, check.stderr

    # Every value now opens with the new key only, to the same plaintext.
    plaintexts: list[str] = []
    for name in PAYMENTS_FILES:
        plaintexts += _decrypt_all(root / name, new_private)
        with pytest.raises(js7_reference.RefDecryptError):
            _decrypt_all(root / name, lifecycle.payments_key)
    assert sorted(plaintexts) == PAYMENTS_PLAINTEXTS

    # Formatting and comments: the same lines, except the values themselves.
    for name in PAYMENTS_FILES:
        old, new = before[name].decode(), after[name].decode()
        assert len(old.splitlines()) == len(new.splitlines()), name
        assert without_values(old) == without_values(new), name
        assert old != new, name
    # The reporting value is left alone, byte for byte.
    report = "inventory/Reporting/daily-report.workflow.json"
    assert after[report] == before[report]
    # The manifest: only privateKeyPath changed; the certificate file holds the new certificate.
    old_manifest = before[f"certs/{PAYMENTS}.yaml"].decode()
    assert after[f"certs/{PAYMENTS}.yaml"].decode() == old_manifest.replace(
        OLD_KEY_PATH, NEW_KEY_PATH
    )
    new_cert = after[f"certs/{PAYMENTS}.crt"].decode()
    # JOC's own export of the alias's Job Resource follows (a rollout from Git must not undo it).
    exported = json.loads(after[f"inventory/Encryption/{PAYMENTS}.jobresource.json"])
    assert exported["arguments"] == {
        "encipherment_certificate": f'"{new_cert}"',
        "encipherment_private_key_path": f'"{NEW_KEY_PATH}"',
    }

    assert f"Wrote the private key  {new_key}" in result.stdout
    assert f"Wrote the certificate  certs/{PAYMENTS}.crt" in result.stdout
    assert f"Wrote the manifest     certs/{PAYMENTS}.yaml (privateKeyPath)" in result.stdout
    assert "Re-encrypted 13 value(s) for the new certificate in 4 file(s):" in result.stdout
    assert "  secrets/payments-values.yaml: 8" in result.stdout
    assert "Left alone 1 value(s) that the old key does not open:" in result.stdout
    assert f"at {NEW_KEY_PATH}" in result.stderr
    assert "BEFORE applying" in result.stderr
    assert f"Keep the old key at {OLD_KEY_PATH}" in result.stderr
    _assert_no_plaintext(tmp_path, texts=(result.stdout, result.stderr))

    # validate passes; the plan shows one update, with its blast radius.
    assert lifecycle.cli("validate").exit_code == 0
    plan = lifecycle.cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stderr
    assert f"  ~ {PAYMENTS}\n" in plan.stdout
    assert f"privateKeyPath:    {OLD_KEY_PATH} -> {NEW_KEY_PATH}" in plan.stdout
    assert "encryptedValues:   4 in the repository (known by reference)" in plan.stdout
    assert plan.stdout.rstrip().endswith("Plan: 0 to add, 1 to change, 0 to delete.")
    # Rotating again with the new key works (the whole loop converges).
    again = lifecycle.cli(
        "rotate",
        PAYMENTS,
        "--old-key",
        str(new_key),
        "--key-out",
        str(tmp_path / "keys" / "third.key"),
        "--type",
        "ec:P-256",
        "--agent-key-path",
        OLD_KEY_PATH,
    )
    assert again.exit_code == 0, again.stderr
    assert "Re-encrypted 13 value(s)" in again.stdout


def test_dry_run_writes_nothing(lifecycle: Lifecycle, tmp_path: Path) -> None:
    before = _files(tmp_path)
    new_key = tmp_path / "keys" / "new.key"
    result = _rotate(lifecycle, "--key-out", str(new_key), "--dry-run", "--agent-key-path", "/k")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert _files(tmp_path) == before
    assert not new_key.exists()
    assert lifecycle.repo.git("status", "--porcelain", "--untracked-files=no") == ""
    assert f"Would write the private key  {new_key}" in out
    assert f"Would write the manifest     certs/{PAYMENTS}.yaml (privateKeyPath)" in out
    assert f"Would write JOC's Job Resource export inventory/Encryption/{PAYMENTS}" in out
    assert "Would re-encrypt 13 value(s) for the new certificate in 4 file(s):" in out
    assert "new certificate: rsa:2048, valid 730 days (made when run for real)" in out
    assert out.rstrip().endswith("Dry run: nothing was written.")
    assert "Next steps" not in result.stderr


def test_rotating_an_inline_certificate_keeps_the_manifest_layout(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    name = f"certs/{REPORTING}.yaml"
    before = _files(lifecycle.path)
    new_key = tmp_path / "keys" / "reporting-new.key"
    result = lifecycle.cli(
        "rotate",
        REPORTING,
        "--old-key",
        str(lifecycle.reporting_key_file),
        "--key-out",
        str(new_key),
        "--days",
        "90",
    )
    assert result.exit_code == 0, result.stderr
    assert "keeps the privateKeyPath of the old one" in result.stderr
    after = _files(lifecycle.path)
    changed = sorted(n for n in after if after[n] != before[n])
    assert changed == [name, "inventory/Reporting/daily-report.workflow.json"]
    old_lines, new_lines = before[name].decode().splitlines(), after[name].decode().splitlines()
    assert len(old_lines) == len(new_lines)
    kept = [a for a, b in zip(old_lines, new_lines, strict=True) if a == b]
    assert kept[:7] == old_lines[:7]  # header, comment and `certificate: |` unchanged
    assert new_lines[7] == "    -----BEGIN CERTIFICATE-----"
    assert new_lines[-1] == old_lines[-1]  # privateKeyPath, after the block
    new_private = load_private_key(new_key.read_bytes())
    assert isinstance(new_private, ec.EllipticCurvePrivateKey)
    assert _decrypt_all(
        lifecycle.path / "inventory/Reporting/daily-report.workflow.json", new_private
    ) == [PLAINTEXTS["reporting.key"]]
    validated = lifecycle.cli("validate", "--format", "json")
    assert validated.exit_code == 0
    plan = lifecycle.cli("plan")
    assert f"  ~ {REPORTING}\n" in plan.stdout
    assert "(89 days left)" in plan.stdout


def test_privatekeypath_is_added_and_a_protected_old_key_is_read(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = certgen.ec_key("P-384")
    repo.write(
        "agent.yaml",
        manifest(
            "agent-x", certificate=certgen.make_cert(key, cn="agent-x"), private_key_path=None
        ),
    )
    repo.commit()
    old_key = tmp_path / "old.key"
    old_key.write_text(certgen.private_key_pem(key, password=b"pw"))
    monkeypatch.setenv("OLD_KEY_PASSWORD", "pw")
    result = run_cli(
        "rotate",
        "agent-x",
        "--old-key",
        str(old_key),
        "--old-key-password-env",
        "OLD_KEY_PASSWORD",
        "--key-out",
        str(tmp_path / "new.key"),
        "--agent-key-path",
        "/keys/agent-x.key",
        "--repo",
        str(repo.path),
    )
    assert result.exit_code == 0, result.stderr
    assert "Re-encrypted 0 value(s) for the new certificate in 0 file(s)." in result.stdout
    text = (repo.path / "agent.yaml").read_text()
    assert 'spec:\n  privateKeyPath: "/keys/agent-x.key"\n  certificate: |\n' in text
    assert "ec:P-384" in result.stderr  # the old key's type
    assert run_cli("validate", "--repo", str(repo.path)).exit_code == 0


def test_refusals_write_nothing(lifecycle: Lifecycle, tmp_path: Path) -> None:
    before = _files(tmp_path)
    new_key = str(tmp_path / "keys" / "new.key")
    cases = [
        (
            ["rotate", PAYMENTS, "--old-key", str(lifecycle.reporting_key_file)],
            1,
            f"the old key does not belong to the certificate of alias '{PAYMENTS}'",
        ),
        (
            ["rotate", "agent-unknown", "--old-key", str(lifecycle.payments_key_file)],
            1,
            "alias 'agent-unknown' is not in the manifests",
        ),
        (
            ["rotate", PAYMENTS, "--old-key", str(lifecycle.payments_key_file), "--type", "x"],
            64,
            "unknown key type 'x'",
        ),
        (
            [
                "rotate",
                PAYMENTS,
                "--old-key",
                str(lifecycle.payments_key_file),
                "--old-key-password-env",
                "A",
                "--old-key-password-file",
                "b",
            ],
            64,
            "give the old key's password one way",
        ),
    ]
    for args, code, message in cases:
        result = lifecycle.cli(*args, "--key-out", new_key)
        assert result.exit_code == code, (args, result.stderr)
        assert message in result.stderr, result.stderr
    inside = lifecycle.cli(
        "rotate",
        PAYMENTS,
        "--old-key",
        str(lifecycle.payments_key_file),
        "--key-out",
        str(lifecycle.path / "new.key"),
    )
    assert inside.exit_code == 1
    assert "is inside the Git work tree" in inside.stderr
    existing = lifecycle.cli(
        "rotate",
        PAYMENTS,
        "--old-key",
        str(lifecycle.payments_key_file),
        "--key-out",
        str(lifecycle.payments_key_file),
    )
    assert existing.exit_code == 1
    assert "never overwrites a key" in existing.stderr
    assert _files(tmp_path) == before


def test_a_file_changed_meanwhile_stops_the_rotation_before_anything_is_written(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from js7certctl import keygen

    workspace = open_workspace(repo=lifecycle.path)
    target = workspace.config.target(None)
    new = keygen.generate_key("ec:P-256")
    certificate = keygen.self_signed_certificate(new, PAYMENTS, 30)
    rotation = prepare(
        workspace,
        target,
        PAYMENTS,
        load_private_key(lifecycle.payments_key_file.read_bytes()),
        new_certificate=certificate,
        new_key_path=None,
        now=datetime.now(UTC),
    )
    assert len(rotation.opened) == 13
    (lifecycle.path / "secrets" / "api.json").write_text('{"api": {}}\n')
    before = _files(tmp_path)
    key_path = tmp_path / "keys" / "x.key"
    with pytest.raises(RotationError, match=r"secrets/api\.json changed while"):
        write(lifecycle.path, rotation, key_path, keygen.private_key_pem(new))
    assert _files(tmp_path) == before


# -------------------------------------------------------------------------- rewriting in place


def _rewrite(path: str, text: str, new: str = "enc:TkVX TkVX TkVX") -> str:
    scanned = scan_bytes(path, text.encode())
    assert isinstance(scanned, ScannedFile)
    replacements = dict.fromkeys(range(len(scanned.values)), new)
    return rewrite_values(scanned, replacements).decode()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a: enc:A B C  # c\n", "a: enc:TkVX TkVX TkVX  # c\n"),
        ('a: "enc:A B C"\n', 'a: "enc:TkVX TkVX TkVX"\n'),
        ("a: 'enc:A B C'\n", "a: 'enc:TkVX TkVX TkVX'\n"),
        ("a: '\"enc:A B C\"'\n", "a: '\"enc:TkVX TkVX TkVX\"'\n"),
        ('a: "\\"enc:A B C\\""\n', 'a: "\\"enc:TkVX TkVX TkVX\\""\n'),
        ("a: &x !!str enc:A B C\nb: *x\n", "a: &x !!str enc:TkVX TkVX TkVX\nb: *x\n"),
        ("a: |\n  enc:A B C\n\nb: 1\n", "a: |\n  enc:TkVX TkVX TkVX\n\nb: 1\n"),
        ("a: |+ # keep\n    enc:A B C\n\n", "a: |+ # keep\n    enc:TkVX TkVX TkVX\n\n"),
        ("a: >-\n  enc:A\n  B C\nb: 1\n", "a: >-\n  enc:TkVX\n  TkVX TkVX\nb: 1\n"),
        ("a: >-\n  enc:A B\n  C D E\n", "a: >-\n  enc:TkVX TkVX TkVX\n"),  # not field-aligned
        ("- [1, 'enc:A B C']\n", "- [1, 'enc:TkVX TkVX TkVX']\n"),
        ("\ufeffa: enc:A B C\r\nb: 2\r\n", "\ufeffa: enc:TkVX TkVX TkVX\r\nb: 2\r\n"),
    ],
)
def test_yaml_values_are_rewritten_in_their_style(before: str, after: str) -> None:
    assert _rewrite("v.yaml", before) == after


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('{"a" : "enc:A B C"}', '{"a" : "enc:TkVX TkVX TkVX"}'),
        ('{\n\t"a": ["\\"enc:A B C\\""]\n}\n', '{\n\t"a": ["\\"enc:TkVX TkVX TkVX\\""]\n}\n'),
        ('{"a": "enc:A\\/B C D", "b": "x\\/y"}', '{"a": "enc:TkVX TkVX TkVX", "b": "x\\/y"}'),
    ],
)
def test_json_values_are_rewritten_in_their_style(before: str, after: str) -> None:
    assert _rewrite("v.json", before) == after


def test_escaped_slashes_stay_escaped() -> None:
    out = _rewrite("v.json", '{"a": "enc:A\\/B C D"}', new="enc:a/b c/d e")
    assert out == '{"a": "enc:a\\/b c\\/d e"}'


def test_scalar_and_expression_helpers() -> None:
    assert replace_scalar("x", "", "/var/a b") == '"/var/a b"'
    assert replace_scalar("x", "", "/var/key.pem") == "/var/key.pem"
    assert replace_scalar("'x'", "'", "it's") == "'it''s'"
    assert replace_scalar("|-\n  old\n", "|", "L1\nL2\n") == "|-\n  L1\n  L2\n"
    assert expression_like('"-----A\\nB\\n"', "X\nY\n") == '"X\\nY\\n"'
    assert expression_like('"-----A\nB\n"', "X\nY\n") == '"X\nY\n"'
    assert expression_like('"/old"', 'C:\\k "x"') == '"C:\\\\k \\"x\\""'
    assert expression_like("/plain", "/new") == "/new"
