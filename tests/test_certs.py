"""Tests for js7certctl.certs with real keys and certificates made by tests.certgen."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from js7certctl.certs import (
    Finding,
    HealthPolicy,
    ParsedCert,
    contains_private_key,
    describe,
    fingerprint,
    health_findings,
    live_facts,
    parse_certificate_text,
)
from js7certctl.model import CertFacts, Severity
from tests import certgen

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
POLICY = HealthPolicy()
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"

# Made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:sect283k1`: cryptography
# can neither make nor load keys on binary curves, but JS7 users may still have such a certificate.
BINARY_CURVE_CERT = """\
-----BEGIN CERTIFICATE-----
MIIBkTCCATCgAwIBAgIUfjUqwntORNFG5Q58biQ4xzj1Ci8wCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMYmluYXJ5LWN1cnZlMCAXDTI2MTEyNjIxMTQzN1oYDzIxMjYx
MTAyMjExNDM3WjAXMRUwEwYDVQQDDAxiaW5hcnktY3VydmUwXjAQBgcqhkjOPQIB
BgUrgQQAEANKAAQBbcrZIckPn9KMbhCxoSDnOhfWXwbAyYpxInVdjGbhJqS2XmsD
yp8OrmliwGGB70paqHJhiFxlYtF3wrxJ9mZ4p099OEzkZGejUzBRMB0GA1UdDgQW
BBSDF8lUPdBcVPZ7Fk2xn0Ptfin2VzAfBgNVHSMEGDAWgBSDF8lUPdBcVPZ7Fk2x
n0Ptfin2VzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA08AMEwCJAHgeKYp
x/tUXcUbmSSb9sibZ4Hl2R6H8ADAlDP4+XJQWqCBvgIkAX6GNesgzpfeMsLLSq/S
UFy+J/jR4lArT7enD0g+PnOMfNWC
-----END CERTIFICATE-----
"""


# ---------------------------------------------------------------------------------------------
# helpers


def parse_ok(data: bytes | str, **kwargs: str) -> ParsedCert:
    parsed, findings = parse_certificate_text(data, **kwargs)
    assert parsed is not None, findings
    assert not [f for f in findings if f.is_error]
    return parsed


def parse_error(data: bytes | str, rule: str, **kwargs: str) -> Finding:
    parsed, findings = parse_certificate_text(data, **kwargs)
    assert parsed is None
    assert [f.rule for f in findings] == [rule], findings
    assert findings[0].severity is Severity.ERROR
    return findings[0]


def health(parsed: ParsedCert, now: datetime = NOW, policy: HealthPolicy = POLICY) -> list[Finding]:
    return health_findings(parsed.facts, policy, now)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def der_of(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def rewrap(pem: str, width: int, newline: str = "\n") -> str:
    """The same PEM with the Base64 cut at ``width`` columns and other line ends."""
    lines = pem.strip().splitlines()
    body = "".join(lines[1:-1])
    chunks = [body[i : i + width] for i in range(0, len(body), width)]
    return newline.join([lines[0], *chunks, lines[-1]]) + newline


def valid_cert(
    key: certgen.SubjectKey | None = None,
    *,
    cn: str = "agent-001",
    hash: certgen.HashName | None = "sha256",
) -> str:
    """A certificate valid from 10 days before NOW to 365 days after it."""
    nb = NOW - timedelta(days=10)
    na = NOW + timedelta(days=365)
    return certgen.make_cert(key, cn=cn, hash=hash, not_before=nb, not_after=na)


# ---------------------------------------------------------------------------------------------
# facts


def test_rsa_certificate_facts() -> None:
    key = certgen.rsa_key()
    cert = certgen.make_cert_object(
        key, cn="agent-001", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=400)
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    der = cert.public_bytes(serialization.Encoding.DER)

    parsed = parse_ok(pem)
    facts = parsed.facts

    assert facts.kind == "certificate"
    assert facts.is_certificate
    assert facts.key_type == "RSA"
    assert facts.key_size == 2048
    assert facts.curve is None
    assert facts.subject == "CN=agent-001"
    assert facts.issuer == "CN=agent-001"
    assert int(facts.serial or "", 16) == cert.serial_number
    assert facts.serial == facts.serial.lower()  # type: ignore[union-attr]
    assert facts.not_before == cert.not_valid_before_utc
    assert facts.not_after == cert.not_valid_after_utc
    assert facts.not_after is not None
    assert facts.not_after.tzinfo is not None
    assert facts.signature_hash == "sha256"
    assert facts.fingerprint == hashlib.sha256(der).hexdigest()
    assert fingerprint(der) == facts.fingerprint
    # The normalised PEM is what cryptography itself writes: 64 columns, one block, final newline.
    assert parsed.pem == pem
    assert health(parsed) == []


def test_issuer_and_subject_differ_for_a_ca_signed_certificate() -> None:
    leaf = certgen.make_cert(
        certgen.ec_key(), cn="agent-007", issuer_key=certgen.rsa_key(), issuer_cn="Example CA"
    )
    facts = parse_ok(leaf).facts
    assert facts.subject == "CN=agent-007"
    assert facts.issuer == "CN=Example CA"


@pytest.mark.parametrize(
    ("curve", "name", "bits"),
    [
        ("P-256", "P-256", 256),
        ("P-384", "P-384", 384),
        ("P-521", "P-521", 521),
        ("secp256k1", "secp256k1", 256),
        ("brainpoolP256r1", "brainpoolP256r1", 256),
    ],
)
def test_ec_certificate_facts(curve: str, name: str, bits: int) -> None:
    parsed = parse_ok(valid_cert(certgen.ec_key(curve)))
    assert parsed.facts.key_type == "EC"
    assert parsed.facts.curve == name
    assert parsed.facts.key_size == bits
    assert parsed.facts.key_description == f"EC {name}"
    assert health(parsed) == []


@pytest.mark.parametrize(
    ("key", "key_type", "bits"),
    [
        (certgen.ed25519_key(), "Ed25519", 256),
        (certgen.ed448_key(), "Ed448", 456),
        (certgen.x25519_key(), "X25519", 256),
        (certgen.x448_key(), "X448", 448),
        (certgen.dsa_key(1024), "DSA", 1024),
    ],
)
def test_key_types_js7_cannot_use(key: certgen.SubjectKey, key_type: str, bits: int) -> None:
    parsed = parse_ok(valid_cert(key))
    assert parsed.facts.key_type == key_type
    assert parsed.facts.key_size == bits
    findings = health(parsed)
    assert rules(findings) == ["key-unsupported"]
    assert findings[0].severity is Severity.ERROR
    assert findings[0].message == (
        f"{key_type} keys cannot be used by JS7 for encryption; use RSA or EC on a prime curve"
    )


def test_ed25519_signature_has_no_hash() -> None:
    parsed = parse_ok(valid_cert(certgen.ed25519_key()))
    assert parsed.facts.signature_hash is None
    assert parsed.facts.is_certificate


def test_binary_curve_certificate_is_parsed_and_refused() -> None:
    parsed = parse_ok(BINARY_CURVE_CERT)
    assert parsed.facts.key_type == "EC"
    assert parsed.facts.curve == "sect283k1"
    assert parsed.facts.key_size == 283
    assert parsed.facts.subject == "CN=binary-curve"
    findings = health(parsed, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert [(f.rule, f.message) for f in findings] == [
        (
            "key-unsupported",
            "EC sect283k1 keys cannot be used by JS7 for encryption; use RSA or EC on a prime "
            "curve",
        )
    ]


def test_public_key_only() -> None:
    key = certgen.rsa_key()
    pem = certgen.public_key_pem(key)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    parsed = parse_ok(pem)
    assert parsed.pem == pem
    facts = parsed.facts
    assert facts.kind == "public-key"
    assert not facts.is_certificate
    assert (facts.key_type, facts.key_size) == ("RSA", 2048)
    assert facts.fingerprint == hashlib.sha256(spki).hexdigest()
    assert facts.subject is None
    assert facts.not_after is None
    assert facts.signature_hash is None
    findings = health(parsed)
    assert [(f.severity, f.rule, f.message) for f in findings] == [
        (
            Severity.WARNING,
            "public-key-only",
            "a public key without a certificate: JOC's encrypt service and expiry checks need a "
            "certificate",
        )
    ]


def test_ec_public_key_warns_that_js7_tools_reject_it() -> None:
    parsed = parse_ok(certgen.public_key_pem(certgen.ec_key("P-384")))
    assert (parsed.facts.key_type, parsed.facts.curve) == ("EC", "P-384")
    (finding,) = health(parsed)
    assert finding.rule == "public-key-only"
    assert finding.message.startswith("a public key without a certificate:")
    assert "JS7's own encrypt tool" in finding.message


def test_js7_vector_certificates() -> None:
    """Certificates made outside this project; fingerprints from `openssl x509 -fingerprint`."""
    if not VECTORS.is_dir():
        pytest.skip("../shared/vectors is not present")
    rsa_cert = parse_ok((VECTORS / "rsa2048.crt").read_bytes()).facts
    assert rsa_cert.fingerprint == (
        "43e45805c2b096e15c06da8342809857fa6b3aeb4c4830c9cdfce78aa2273b06"
    )
    assert (rsa_cert.key_type, rsa_cert.key_size) == ("RSA", 2048)
    assert rsa_cert.subject == "CN=js7-enc-test-rsa"
    assert rsa_cert.serial == "6e989bec1a74cb67c5a0e1069a47ad521afcc2d6"
    ec_cert = parse_ok((VECTORS / "ecp256.crt").read_bytes()).facts
    assert ec_cert.fingerprint == (
        "41beff795c11e91c011e7f30de933bb4068e53a5513140b6b60545610fc07e14"
    )
    assert (ec_cert.key_type, ec_cert.curve) == ("EC", "P-256")
    pub = parse_ok((VECTORS / "ecp256.pub.pem").read_bytes()).facts
    assert (pub.kind, pub.curve) == ("public-key", "P-256")
    for name in ("rsa2048.key", "rsa2048.pkcs1.key", "rsa2048.enc.pkcs8.key", "ecp256.sec1.key"):
        parse_error((VECTORS / name).read_bytes(), "private-key")


# ---------------------------------------------------------------------------------------------
# normalisation


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda pem: rewrap(pem, 76), id="76-columns"),
        pytest.param(lambda pem: rewrap(pem, 40), id="40-columns"),
        pytest.param(lambda pem: rewrap(pem, 10_000), id="one-line"),
        pytest.param(lambda pem: pem.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda pem: pem.replace("\n", "  \n"), id="trailing-spaces"),
        pytest.param(lambda pem: pem.rstrip("\n"), id="no-final-newline"),
        pytest.param(lambda pem: " ".join(pem.split("\n")), id="folded-onto-one-line"),
        pytest.param(lambda pem: "\n".join("    " + ln for ln in pem.split("\n")), id="indented"),
        pytest.param(lambda pem: "subject=CN = agent-001\nissuer=x\n\n" + pem, id="openssl-text"),
        pytest.param(lambda pem: "\ufeff" + pem, id="bom"),
    ],
)
def test_rewrapped_pem_is_the_same_certificate(variant: object) -> None:
    pem = valid_cert()
    original = parse_ok(pem)
    changed = variant(pem)  # type: ignore[operator]
    assert changed != pem
    parsed = parse_ok(changed)
    assert parsed.pem == original.pem == pem
    assert parsed.facts == original.facts
    assert parsed.facts.fingerprint == hashlib.sha256(der_of(pem)).hexdigest()


def test_bytes_utf8_bom_and_utf16_input() -> None:
    pem = valid_cert()
    expected = parse_ok(pem)
    assert parse_ok(pem.encode()).pem == expected.pem
    assert parse_ok(b"\xef\xbb\xbf" + pem.encode()).pem == expected.pem
    assert parse_ok(pem.encode("utf-16")).pem == expected.pem


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(min_value=1, max_value=200),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    padding_text=st.sampled_from(["", " ", "\t", "\n\n"]),
)
def test_any_rewrap_gives_the_same_pem(width: int, newline: str, padding_text: str) -> None:
    pem = _HYPOTHESIS_CERT
    text = padding_text + rewrap(pem, width, newline) + padding_text
    parsed = parse_ok(text)
    assert parsed.pem == pem


_HYPOTHESIS_CERT = certgen.make_cert(certgen.ec_key())


# ---------------------------------------------------------------------------------------------
# health


def test_expired() -> None:
    parsed = parse_ok(
        certgen.make_cert(
            not_before=datetime(2024, 1, 1, tzinfo=UTC),
            not_after=datetime(2025, 1, 1, tzinfo=UTC),
        )
    )
    findings = health(parsed, now=datetime(2025, 1, 11, 8, 0, tzinfo=UTC))
    assert [(f.severity, f.rule, f.message) for f in findings] == [
        (Severity.ERROR, "cert-expired", "certificate expired on 2025-01-01 (10 days ago)")
    ]


def test_not_yet_valid() -> None:
    parsed = parse_ok(
        certgen.make_cert(
            not_before=datetime(2030, 1, 1, tzinfo=UTC),
            not_after=datetime(2031, 1, 1, tzinfo=UTC),
        )
    )
    findings = health(parsed)
    assert [(f.severity, f.rule, f.message) for f in findings] == [
        (Severity.ERROR, "cert-not-yet-valid", "certificate is not valid before 2030-01-01")
    ]


def test_expiring_in_12_days() -> None:
    not_after = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    parsed = parse_ok(certgen.make_cert(not_before=NOW - timedelta(days=300), not_after=not_after))
    findings = health(parsed, now=not_after - timedelta(days=12))
    assert [(f.severity, f.rule, f.message) for f in findings] == [
        (Severity.WARNING, "cert-expiring", "certificate expires in 12 days (on 2026-12-08)")
    ]
    # A few hours later it is still "12 days" until it turns 11 whole days.
    assert health(parsed, now=not_after - timedelta(days=12, hours=-3))[0].message == (
        "certificate expires in 11 days (on 2026-12-08)"
    )


def test_expiry_warning_window_boundaries() -> None:
    not_after = datetime(2027, 3, 1, tzinfo=UTC)
    parsed = parse_ok(certgen.make_cert(not_before=NOW - timedelta(days=1), not_after=not_after))
    assert health(parsed, now=not_after - timedelta(days=30, seconds=1)) == []
    assert rules(health(parsed, now=not_after - timedelta(days=30))) == ["cert-expiring"]
    assert health(parsed, now=not_after - timedelta(days=5), policy=HealthPolicy(3)) == []
    assert rules(health(parsed, now=not_after - timedelta(hours=2))) == ["cert-expiring"]
    assert rules(health(parsed, now=not_after)) == ["cert-expiring"]  # notAfter is inclusive
    assert rules(health(parsed, now=not_after + timedelta(seconds=1))) == ["cert-expired"]


def test_weak_rsa_key() -> None:
    parsed = parse_ok(valid_cert(certgen.rsa_key(1024)))
    assert parsed.facts.key_size == 1024
    findings = health(parsed)
    assert [(f.severity, f.rule, f.message) for f in findings] == [
        (
            Severity.ERROR,
            "rsa-weak",
            "RSA 1024 key is below the minimum of 2048 bits (policy.minRsaBits)",
        )
    ]
    strict = parse_ok(valid_cert())
    assert [f.message for f in health(strict, policy=HealthPolicy(min_rsa_bits=3072))] == [
        "RSA 2048 key is below the minimum of 3072 bits (policy.minRsaBits)"
    ]


def test_sha1_signed_certificate() -> None:
    pem = valid_cert(hash="sha1")
    cert = x509.load_pem_x509_certificate(pem.encode())
    # A real SHA-1 signature that verifies with the issuer's key.
    public = certgen.rsa_key().public_key()
    public.verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        hashes.SHA1(),  # noqa: S303
    )
    parsed = parse_ok(pem)
    assert parsed.facts.signature_hash == "sha1"
    findings = health(parsed)
    assert [(f.severity, f.rule, f.message) for f in findings] == [
        (Severity.WARNING, "sha1-signature", "certificate is signed with SHA-1")
    ]


def test_md5_signed_certificate_is_a_weak_signature() -> None:
    parsed = parse_ok(valid_cert(hash="md5"))
    assert [(f.rule, f.message) for f in health(parsed)] == [
        ("weak-signature", "certificate is signed with MD5")
    ]


def test_several_health_findings_at_once() -> None:
    parsed = parse_ok(
        certgen.make_cert(
            certgen.rsa_key(1024),
            hash="sha1",
            not_before=datetime(2020, 1, 1, tzinfo=UTC),
            not_after=datetime(2021, 1, 1, tzinfo=UTC),
        )
    )
    assert rules(health(parsed)) == ["cert-expired", "rsa-weak", "sha1-signature"]


def test_naive_now_is_taken_as_utc() -> None:
    parsed = parse_ok(valid_cert())
    assert health_findings(parsed.facts, POLICY, NOW.replace(tzinfo=None)) == []


# ---------------------------------------------------------------------------------------------
# refused input


def _key_lines(key_pem: str) -> list[str]:
    return [line for line in key_pem.splitlines() if line and not line.startswith("-----")]


@pytest.mark.parametrize(
    ("key", "fmt", "password"),
    [
        (certgen.rsa_key(), "pkcs8", None),
        (certgen.rsa_key(), "traditional", None),
        (certgen.ec_key(), "traditional", None),
        (certgen.ec_key(), "pkcs8", b"secret"),
        (certgen.ed25519_key(), "openssh", None),
        (certgen.rsa_key(), "traditional", b"secret"),
    ],
)
def test_private_key_alone(key: certgen.SubjectKey, fmt: str, password: bytes | None) -> None:
    key_pem = certgen.private_key_pem(key, fmt=fmt, password=password)  # type: ignore[arg-type]
    finding = parse_error(key_pem, "private-key", source="certs/agent.crt")
    assert finding.message == (
        "certs/agent.crt holds a private key; remove it (only the certificate belongs in the "
        "repository)"
    )
    assert contains_private_key(key_pem)


def test_private_key_with_certificate_is_refused_whole() -> None:
    key_pem = certgen.private_key_pem(certgen.rsa_key())
    cert = valid_cert()
    for text in (cert + key_pem, key_pem + cert, cert.replace("-----END", key_pem + "-----END")):
        finding = parse_error(text, "private-key")
        for line in _key_lines(key_pem):
            assert line not in finding.message
        assert live_facts(text) is None or contains_private_key(text)


def test_a_comment_about_a_private_key_is_not_a_key() -> None:
    cert = valid_cert()
    parsed = parse_ok("# agent-001's private key stays on the Agent\n" + cert)
    assert parsed.pem == cert
    parse_error("# the PRIVATE KEY stays on the Agent\n" + cert, "private-key")


def test_der_private_key_is_refused() -> None:
    key = certgen.rsa_key()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    finding = parse_error(der, "private-key", source="agent.der")
    assert base64.b64encode(der).decode()[:40] not in finding.message
    encrypted = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    parse_error(encrypted, "private-key")


def test_no_message_ever_contains_a_line_of_a_private_key() -> None:
    key_pem = certgen.private_key_pem(certgen.rsa_key())
    lines = _key_lines(key_pem)
    body = "".join(lines)
    cert = valid_cert()
    attempts: list[bytes | str] = [
        key_pem,
        key_pem.replace("PRIVATE KEY", "PRIVATE KEY", 1),
        key_pem.replace("-----BEGIN", "----BEGIN"),
        key_pem.replace("PRIVATE KEY", "private key"),
        cert + key_pem,
        cert + cert + key_pem,
        key_pem[: len(key_pem) // 2],
        key_pem.encode("utf-16"),
        "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\n" + body + "\n-----END PUBLIC KEY-----\n",
        "-----BEGIN " + lines[0][:30] + "-----\n" + body + "\n-----END CERTIFICATE-----\n",
        body,
        base64.b64decode(body),
    ]
    for text in attempts:
        _, findings = parse_certificate_text(text, source="certs/x.crt")
        assert findings, text
        for finding in findings:
            for line in lines:
                assert line not in finding.message
                assert line[:24] not in finding.message
            assert body[:16] not in finding.message


def test_chain_of_two_is_a_bundle() -> None:
    ca_key = certgen.rsa_key(variant=1)
    leaf = certgen.make_cert(certgen.rsa_key(), issuer_key=ca_key, issuer_cn="ca")
    ca = certgen.make_cert(ca_key, cn="ca")
    finding = parse_error(leaf + ca, "pem-bundle", source="agent.crt")
    assert finding.message == (
        "agent.crt holds 2 certificates (a chain or bundle); keep only the alias's own "
        "certificate (JS7 accepts exactly one certificate or public key)"
    )


def test_certificate_and_public_key_is_a_bundle() -> None:
    text = valid_cert() + certgen.public_key_pem(certgen.ec_key())
    finding = parse_error(text, "pem-bundle")
    assert "2 blocks (1 certificate, 1 public key)" in finding.message


def test_der_certificate() -> None:
    der = certgen.der_cert()
    finding = parse_error(der, "pem-der", source="certs/agent.der")
    assert finding.message == (
        "certs/agent.der is a DER (binary) certificate, but JS7 needs PEM; convert it with "
        "`openssl x509 -inform DER -in certs/agent.der -out certs/agent.pem` and use the PEM file"
    )
    misnamed = parse_error(der, "pem-der", source="agent.pem")
    assert "-out agent.crt" in misnamed.message


def test_der_public_key() -> None:
    der = (
        certgen.rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    finding = parse_error(der, "pem-der")
    assert "openssl pkey -pubin -inform DER" in finding.message


def test_truncated_without_end_line() -> None:
    pem = valid_cert()
    truncated = pem[: len(pem) // 2]
    finding = parse_error(truncated, "pem-invalid", source="a.crt")
    assert finding.message == (
        "a.crt has a -----BEGIN CERTIFICATE----- line without its -----END CERTIFICATE----- "
        "line (the text is truncated); copy the whole PEM text again"
    )
    for line in truncated.splitlines()[1:]:
        assert line not in finding.message


def test_truncated_body_with_end_line() -> None:
    pem = valid_cert()
    lines = pem.splitlines()
    # Drop whole lines from the middle: still valid Base64, but no longer a certificate.
    shortened = "\n".join(lines[:3] + lines[-2:]) + "\n"
    finding = parse_error(shortened, "pem-invalid")
    assert "does not hold an X.509 certificate" in finding.message
    # Cut mid-line: the Base64 itself breaks.
    cut = "\n".join([*lines[:3], lines[3][:-1], lines[-1]]) + "\n"
    assert "not valid Base64" in parse_error(cut, "pem-invalid").message


def test_start_cut_off() -> None:
    pem = valid_cert()
    finding = parse_error(pem[pem.index("\n") + 1 :], "pem-invalid")
    assert "without its -----BEGIN CERTIFICATE----- line" in finding.message


def test_bad_base64() -> None:
    pem = valid_cert()
    lines = pem.splitlines()
    lines[2] = lines[2][:10] + "!" + lines[2][11:]
    finding = parse_error("\n".join(lines), "pem-invalid")
    assert finding.message == (
        "the certificate text has a CERTIFICATE block that is not valid Base64 (a stray "
        "character or a line cut short); copy the PEM text again without changes"
    )
    assert lines[2] not in finding.message


def test_empty_block() -> None:
    finding = parse_error("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "pem-invalid")
    assert "empty CERTIFICATE block" in finding.message


def test_mismatched_end_line() -> None:
    pem = valid_cert().replace("END CERTIFICATE", "END PUBLIC KEY")
    finding = parse_error(pem, "pem-invalid")
    assert "ends with -----END PUBLIC KEY-----" in finding.message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(("-----BEGIN", "----BEGIN"), "malformed PEM header", id="four-dashes-begin"),
        pytest.param(("TE-----\n", "TE----\n"), "malformed PEM header", id="four-dashes-end"),
    ],
)
def test_malformed_markers(change: tuple[str, str], expected: str) -> None:
    pem = valid_cert().replace(*change, 1)
    assert expected in parse_error(pem, "pem-invalid").message


def test_csr_header() -> None:
    key = certgen.rsa_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-001")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    finding = parse_error(csr, "pem-missing", source="agent.csr")
    assert finding.message.startswith(
        "agent.csr holds a -----BEGIN CERTIFICATE REQUEST----- block: a certificate signing "
        "request (CSR), not a certificate;"
    )
    assert "CERTIFICATE" in finding.message


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("PKCS7", "openssl pkcs7 -print_certs -in agent.p7b"),
        ("TRUSTED CERTIFICATE", "-----BEGIN TRUSTED CERTIFICATE-----"),
        ("X509 CRL", "revocation list"),
        ("RSA PUBLIC KEY", "openssl rsa -RSAPublicKey_in -pubout"),
        ("CERTIFCATE", "looks misspelled; write -----BEGIN CERTIFICATE-----"),
        ("PUBLIK KEY", "looks misspelled; write -----BEGIN PUBLIC KEY-----"),
        ("certificate", "PEM headers are upper case"),
        ("SOMETHING ELSE", "holds a -----BEGIN SOMETHING ELSE----- block, but one"),
    ],
)
def test_other_headers(label: str, expected: str) -> None:
    body = valid_cert().splitlines()[1:-1]
    text = "\n".join([f"-----BEGIN {label}-----", *body, f"-----END {label}-----", ""])
    finding = parse_error(text, "pem-missing", source="agent.p7b")
    assert expected in finding.message
    for line in body:
        assert line not in finding.message


def test_header_label_that_is_not_words_is_not_echoed() -> None:
    body = valid_cert().splitlines()[1:-1]
    label = body[0][:30]
    text = f"-----BEGIN {label}-----\n" + "\n".join(body) + f"\n-----END {label}-----\n"
    finding = parse_error(text, "pem-missing")
    assert label not in finding.message
    assert "(unrecognised)" in finding.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("  \n\t\n", "is empty"),
        ("hello world", "holds no PEM certificate"),
        (b"\x00\x01\x02binary", "holds no PEM certificate"),
        (b"\x30\x03\x02\x01\x01", "holds no PEM certificate"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG agent@host", "OpenSSH public key"),
        ("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n", "SSH public"),
    ],
)
def test_nothing_usable(text: str | bytes, expected: str) -> None:
    assert expected in parse_error(text, "pem-missing").message


def test_base64_without_headers() -> None:
    body = "".join(valid_cert().splitlines()[1:-1])
    finding = parse_error(body, "pem-missing")
    assert "without PEM header and footer lines" in finding.message
    assert body[:20] not in finding.message


def test_other_block_next_to_the_certificate_is_a_warning() -> None:
    cert = valid_cert()
    text = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + cert
    parsed, findings = parse_certificate_text(text)
    assert parsed is not None
    assert parsed.pem == cert
    assert [(f.severity, f.rule) for f in findings] == [(Severity.WARNING, "pem-extra-block")]
    assert "EC PARAMETERS" in findings[0].message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_parse_never_raises_on_arbitrary_input(data: bytes | str) -> None:
    parsed, findings = parse_certificate_text(data)
    assert parsed is None
    assert findings
    assert all(f.is_error for f in findings)
    live_facts(data if isinstance(data, str) else data.decode("latin-1"))


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_damaged_certificates_never_raise(data: st.DataObject) -> None:
    pem = _HYPOTHESIS_CERT
    position = data.draw(st.integers(0, len(pem) - 1))
    replacement = data.draw(st.text(max_size=3))
    damaged = pem[:position] + replacement + pem[position + 1 :]
    parsed, findings = parse_certificate_text(damaged)
    if parsed is not None:
        # Whitespace changes nothing; a changed character may still be a (different) certificate,
        # since signatures are not checked. Either way the PEM and the facts must agree.
        der = der_of(parsed.pem)
        assert parsed.pem == x509.load_der_x509_certificate(der).public_bytes(
            serialization.Encoding.PEM
        ).decode("ascii")
        assert parsed.facts.fingerprint == hashlib.sha256(der).hexdigest()
        assert live_facts(damaged) == parsed.facts
    else:
        assert findings
        assert findings[0].rule.startswith("pem-")
        live_facts(damaged)


# ---------------------------------------------------------------------------------------------
# live_facts, describe, fingerprint


def test_live_facts() -> None:
    pem = valid_cert(certgen.ec_key())
    assert live_facts(pem) == parse_ok(pem).facts
    assert live_facts(rewrap(pem, 76, "\r\n")) == parse_ok(pem).facts
    public = certgen.public_key_pem(certgen.rsa_key())
    assert live_facts(public) == parse_ok(public).facts


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB",
        "\x00\xff" * 50,
    ],
)
def test_live_facts_on_garbage_is_none(text: str) -> None:
    assert live_facts(text) is None


def test_live_facts_on_a_bundle_is_none() -> None:
    assert live_facts(valid_cert() + valid_cert()) is None


def test_live_facts_with_a_stored_private_key() -> None:
    """JOC stores cert+key whole; facts describe the certificate, the key is flagged apart."""
    cert = valid_cert()
    text = cert + certgen.private_key_pem(certgen.rsa_key())
    assert live_facts(text) == parse_ok(cert).facts
    assert contains_private_key(text)
    assert not contains_private_key(cert)


def test_describe() -> None:
    facts = CertFacts(
        kind="certificate",
        key_type="RSA",
        key_size=2048,
        fingerprint="ab12" + "0" * 60,
        subject="CN=agent-001",
        issuer="CN=agent-001",
        serial="01",
        not_before=datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime(2027, 1, 5, 12, 0, tzinfo=UTC),
        signature_hash="sha256",
    )
    now = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
    assert describe(facts, now) == (
        "RSA 2048, CN=agent-001, expires 2027-01-05 (405 days left), SHA256:ab12000000000000…"
    )
    assert describe(facts, datetime(2027, 1, 15, 12, 0, tzinfo=UTC)) == (
        "RSA 2048, CN=agent-001, expired 2027-01-05 (10 days ago), SHA256:ab12000000000000…"
    )
    assert describe(facts, datetime(2024, 12, 31, tzinfo=UTC)).startswith(
        "RSA 2048, CN=agent-001, not valid before 2025-01-01, expires 2027-01-05"
    )


def test_describe_real_certificates() -> None:
    ec_line = describe(parse_ok(valid_cert(certgen.ec_key("P-384"), cn="agent-9")).facts, NOW)
    assert ec_line.startswith("EC P-384, CN=agent-9, expires ")
    assert "(365 days left)" in ec_line
    public = parse_ok(certgen.public_key_pem(certgen.ed25519_key())).facts
    assert describe(public, NOW) == (
        f"Ed25519, public key (no certificate), SHA256:{public.fingerprint[:16]}…"
    )


def test_fingerprint() -> None:
    assert fingerprint(b"") == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert fingerprint(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_two_certificates_for_one_key_differ_in_fingerprint() -> None:
    a = parse_ok(valid_cert()).facts
    b = parse_ok(valid_cert()).facts
    assert a.fingerprint != b.fingerprint  # random serials: the DER differs
    assert a.serial != b.serial


def test_certgen_rsa_key_cache() -> None:
    assert certgen.rsa_key() is certgen.rsa_key(2048)
    assert certgen.rsa_key(variant=1) is not certgen.rsa_key()
    assert isinstance(certgen.rsa_key(), rsa.RSAPrivateKey)


def test_trailing_bytes_after_the_der_are_invalid() -> None:
    der = certgen.der_cert()
    b64 = base64.b64encode(der + b"\x00\x00").decode()
    text = "-----BEGIN CERTIFICATE-----\n" + b64 + "\n-----END CERTIFICATE-----\n"
    assert "does not hold an X.509 certificate" in parse_error(text, "pem-invalid").message
    assert live_facts(text) is None


def test_a_certificate_with_an_invalid_version_is_pem_invalid() -> None:
    """Regression: cryptography raises InvalidVersion (not a ValueError) for version 52."""
    der = certgen.der_cert()
    marker = b"\xa0\x03\x02\x01\x02"
    assert marker in der
    damaged = der.replace(marker, b"\xa0\x03\x02\x01\x34", 1)
    body = base64.b64encode(damaged).decode()
    pem = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n"
    parsed, findings = parse_certificate_text(pem)
    assert parsed is None
    assert [f.rule for f in findings] == ["pem-invalid"]
    assert live_facts(pem) is None
