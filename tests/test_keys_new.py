"""`keys new` end to end on real Git repositories: the key kept out of Git, files never
overwritten, and the result usable at once by validate, encrypt and decrypt."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests import certgen
from tests import js7_reference as ref
from tests.helpers import GitRepo, manifest, run_cli

AGENT_KEY = "/var/sos-berlin.com/js7/agent/config/private/agent-pay.key"


@pytest.fixture
def initialized(repo: GitRepo) -> GitRepo:
    """A repository after `js7certctl init`: manifests in certs/, one example alias."""
    result = run_cli("init", "--repo", str(repo.path))
    assert result.exit_code == 0, result.output
    repo.commit("init")
    return repo


def _keys_new(repo: GitRepo, alias: str, key_out: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(
        "keys", "new", alias, "--key-out", str(key_out), "--repo", str(repo.path), *args
    )
    return result.exit_code, result.stdout, result.stderr


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_new_ec_key_works_end_to_end(initialized: GitRepo, tmp_path: Path) -> None:
    repo = initialized
    key_out = tmp_path / "agent-keys" / "agent-pay.key"
    key_out.parent.mkdir()
    code, out, err = _keys_new(
        repo, "agent-pay", key_out, "--type", "ec:P-256", "--agent-key-path", AGENT_KEY
    )
    assert code == 0, err
    assert "Wrote the private key" in out
    assert "certs/agent-pay.crt" in out
    assert "certs/agent-pay.yaml" in out
    assert AGENT_KEY in err  # the next steps say where to install the key
    assert "Warning" not in err

    # The key: unencrypted PKCS#8, mode 0600, and never in the output.
    assert stat.S_IMODE(key_out.stat().st_mode) == 0o600
    pem = key_out.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    private = serialization.load_pem_private_key(pem, None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert pem.decode().splitlines()[1] not in out + err

    # The certificate: self-signed for this key, CN=alias, keyAgreement, 730 days.
    cert = _load_cert(repo.path / "certs" / "agent-pay.crt")
    assert cert.public_key() == private.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "agent-pay"
    assert cert.issuer == cert.subject
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_agreement
    assert not usage.key_encipherment
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=730) <= lifetime <= timedelta(days=730, minutes=10)

    # The manifest validates, with the Agent's key path.
    result = run_cli("validate", "--repo", str(repo.path), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert not report["problems"]
    listed = {c["alias"]: c for c in report["certificates"]}
    assert "agent-pay" in listed
    assert AGENT_KEY in (repo.path / "certs" / "agent-pay.yaml").read_text(encoding="utf-8")

    # encrypt --alias and decrypt --key round-trip, and --check agrees.
    value = run_cli("encrypt", "--alias", "agent-pay", "--repo", str(repo.path), input="s3cret\n")
    assert value.exit_code == 0, value.output
    assert ref.decrypt(private, value.stdout) == b"s3cret"
    plain = run_cli("decrypt", "--key", str(key_out), input=value.stdout)
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == "s3cret"
    check = run_cli(
        "decrypt", "--key", str(key_out), "--check", "agent-pay", "--repo", str(repo.path)
    )
    assert check.exit_code == 0, check.output

    # Ready to commit: the certificate and manifest are new files, nothing else.
    status = repo.git("status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == ["?? certs/agent-pay.crt", "?? certs/agent-pay.yaml"]


def test_the_default_is_rsa_3072_with_key_encipherment(
    initialized: GitRepo, tmp_path: Path
) -> None:
    key_out = tmp_path / "agent.key"
    code, _, err = _keys_new(
        initialized, "agent-rsa", key_out, "--days", "30", "--agent-key-path", AGENT_KEY
    )
    assert code == 0, err
    private = serialization.load_pem_private_key(key_out.read_bytes(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 3072
    cert = _load_cert(initialized.path / "certs" / "agent-rsa.crt")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment
    assert not usage.key_agreement
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=30) <= lifetime <= timedelta(days=30, minutes=10)  # fmt: skip


def test_a_key_inside_the_work_tree_is_refused_naming_git(initialized: GitRepo) -> None:
    repo = initialized
    (repo.path / "keys").mkdir()
    key_out = repo.path / "keys" / "agent-pay.key"
    code, out, err = _keys_new(repo, "agent-pay", key_out, "--type", "ec:P-256")
    assert code == 1
    assert out == ""
    assert "Git" in err
    assert "not ignored" in err
    assert not key_out.exists()
    assert not (repo.path / "certs" / "agent-pay.crt").exists()
    assert not (repo.path / "certs" / "agent-pay.yaml").exists()


def test_a_git_ignored_path_inside_the_work_tree_is_accepted(initialized: GitRepo) -> None:
    repo = initialized
    with open(repo.path / ".gitignore", "a", encoding="utf-8") as handle:
        handle.write("keys/\n")
    repo.commit("ignore keys/")
    (repo.path / "keys").mkdir()
    key_out = repo.path / "keys" / "agent-pay.key"
    code, _, err = _keys_new(
        repo, "agent-pay", key_out, "--type", "ec:P-384", "--agent-key-path", AGENT_KEY
    )
    assert code == 0, err
    assert stat.S_IMODE(key_out.stat().st_mode) == 0o600
    status = repo.git("status", "--porcelain", "--untracked-files=all")
    assert "keys/" not in status
    assert "certs/agent-pay.yaml" in status


def test_nothing_is_ever_overwritten(initialized: GitRepo, tmp_path: Path) -> None:
    repo = initialized
    key_out = tmp_path / "agent.key"
    key_out.write_text("an old key\n", encoding="utf-8")
    code, _, err = _keys_new(repo, "agent-pay", key_out, "--type", "ec:P-256")
    assert code == 1
    assert "already exists" in err
    assert key_out.read_text(encoding="utf-8") == "an old key\n"
    assert not (repo.path / "certs" / "agent-pay.crt").exists()

    # A certificate file of that name (without a manifest) blocks too, before the key is made.
    repo.write("certs/agent-pay.crt", "someone else's file\n")
    fresh = tmp_path / "fresh.key"
    code, _, err = _keys_new(repo, "agent-pay", fresh, "--type", "ec:P-256")
    assert code == 1
    assert "certs/agent-pay.crt already exists" in err
    assert not fresh.exists()


def test_an_alias_that_has_a_manifest_is_refused(initialized: GitRepo, tmp_path: Path) -> None:
    cert = certgen.make_cert(certgen.ec_key("P-256"), cn="agent-pay")
    initialized.write("certs/other-name.yaml", manifest("agent-pay", certificate=cert))
    key_out = tmp_path / "agent.key"
    code, _, err = _keys_new(initialized, "agent-pay", key_out, "--type", "ec:P-256")
    assert code == 1
    assert "alias 'agent-pay' already has a manifest (certs/other-name.yaml)" in err
    assert not key_out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "new", "bad/alias", "--key-out", "{tmp}/a.key"],
        ["keys", "new", "class", "--key-out", "{tmp}/a.key"],
        ["keys", "new", "agent-a"],  # --key-out is required
        ["keys", "new", "agent-a", "--key-out", "{tmp}/a.key", "--type", "dsa:2048"],
        ["keys", "new", "agent-a", "--key-out", "{tmp}/a.key", "--days", "0"],
    ],
    ids=["slash-in-alias", "java-reserved-word", "no-key-out", "unknown-type", "zero-days"],
)
def test_usage_errors_exit_64(initialized: GitRepo, tmp_path: Path, args: list[str]) -> None:
    filled = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    result = run_cli(*filled, "--repo", str(initialized.path))
    assert result.exit_code == 64, result.output
    assert list(tmp_path.iterdir()) == [initialized.path]


def test_a_csr_instead_of_a_certificate(initialized: GitRepo, tmp_path: Path) -> None:
    key_out = tmp_path / "agent.key"
    csr_path = tmp_path / "agent.csr"
    code, out, err = _keys_new(
        initialized, "agent-ca", key_out, "--type", "ec:P-256", "--csr", str(csr_path),
        "--agent-key-path", AGENT_KEY,
    )  # fmt: skip
    assert code == 0, err
    assert "Wrote the CSR" in out
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "agent-ca"
    private = serialization.load_pem_private_key(key_out.read_bytes(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert csr.public_key() == private.public_key()
    # No certificate and no manifest yet: the next steps say what to save where.
    assert not (initialized.path / "certs" / "agent-ca.crt").exists()
    assert not (initialized.path / "certs" / "agent-ca.yaml").exists()
    assert "certs/agent-ca.crt" in err
    assert 'certificateFile: "agent-ca.crt"' in err
    assert run_cli("validate", "--repo", str(initialized.path)).exit_code == 0


def test_without_an_agent_key_path_it_warns_and_quotes_odd_aliases(
    initialized: GitRepo, tmp_path: Path
) -> None:
    key_out = tmp_path / "agent.key"
    code, _, err = _keys_new(initialized, "1.5", key_out, "--type", "ec:P-256")
    assert code == 0, err
    assert "Warning: no --agent-key-path" in err
    text = (initialized.path / "certs" / "1.5.yaml").read_text(encoding="utf-8")
    assert 'alias: "1.5"' in text  # a string, not the number 1.5
    assert "  privateKeyPath:" not in text
    result = run_cli("validate", "--repo", str(initialized.path), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "1.5" in [c["alias"] for c in report["certificates"]]
    assert any(p["rule"] == "private-key-path" for p in report["problems"])


def test_key_out_in_a_missing_folder_and_a_manifest_dir_outside_the_manifests(
    initialized: GitRepo, tmp_path: Path
) -> None:
    code, _, err = _keys_new(
        initialized, "agent-a", tmp_path / "nope" / "a.key", "--type", "ec:P-256"
    )
    assert code == 1
    assert "does not exist" in err

    elsewhere = initialized.path / "elsewhere"
    code, _, err = _keys_new(
        initialized, "agent-a", tmp_path / "a.key", "--type", "ec:P-256",
        "--manifest-dir", str(elsewhere), "--agent-key-path", AGENT_KEY,
    )  # fmt: skip
    assert code == 0, err
    assert "not among the config's manifests" in err
    assert (elsewhere / "agent-a.yaml").is_file()
