"""Certificate parsing, facts and health checks: the only module that parses certificates.

Input is the text of an inline ``certificate:`` value or of a ``certificateFile``. The result is
either exactly one normalised PEM block (``CERTIFICATE`` or ``PUBLIC KEY``) with its facts, or
findings that say what is wrong and what to do. The PEM text is split here, not by
``cryptography`` (whose ``load_pem_x509_certificate`` silently takes the first of several
certificates), and each block is decoded once with ``load_der_x509_certificate``.

Findings never contain any of the input's Base64 or key text: a private key anywhere in the input
is reported by rule id and a fixed sentence, and nothing is returned to be sent anywhere.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from js7certctl.model import CertFacts, Severity

__all__ = [
    "RULE_CERT_EXPIRED",
    "RULE_CERT_EXPIRING",
    "RULE_CERT_NOT_YET_VALID",
    "RULE_KEY_UNSUPPORTED",
    "RULE_PEM_BUNDLE",
    "RULE_PEM_DER",
    "RULE_PEM_EXTRA_BLOCK",
    "RULE_PEM_INVALID",
    "RULE_PEM_MISSING",
    "RULE_PRIVATE_KEY",
    "RULE_PUBLIC_KEY_ONLY",
    "RULE_RSA_WEAK",
    "RULE_SHA1_SIGNATURE",
    "RULE_WEAK_SIGNATURE",
    "SUPPORTED_EC_CURVES",
    "Finding",
    "HealthPolicy",
    "ParsedCert",
    "contains_private_key",
    "describe",
    "fingerprint",
    "health_findings",
    "live_facts",
    "parse_certificate_text",
]

# Parse findings.
RULE_PRIVATE_KEY = "private-key"
RULE_PEM_MISSING = "pem-missing"
RULE_PEM_DER = "pem-der"
RULE_PEM_BUNDLE = "pem-bundle"
RULE_PEM_INVALID = "pem-invalid"
RULE_PEM_EXTRA_BLOCK = "pem-extra-block"
# Health findings.
RULE_CERT_EXPIRED = "cert-expired"
RULE_CERT_NOT_YET_VALID = "cert-not-yet-valid"
RULE_CERT_EXPIRING = "cert-expiring"
RULE_RSA_WEAK = "rsa-weak"
RULE_KEY_UNSUPPORTED = "key-unsupported"
RULE_PUBLIC_KEY_ONLY = "public-key-only"
RULE_SHA1_SIGNATURE = "sha1-signature"
RULE_WEAK_SIGNATURE = "weak-signature"

# Named prime curves that JS7 (BouncyCastle ECIES) and js7certctl (cryptography) can both use.
SUPPORTED_EC_CURVES = frozenset(
    {
        "P-192",
        "P-224",
        "P-256",
        "P-384",
        "P-521",
        "secp256k1",
        "brainpoolP256r1",
        "brainpoolP384r1",
        "brainpoolP512r1",
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with a certificate text or certificate, with a stable rule id."""

    severity: Severity
    rule: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


@dataclass(frozen=True, slots=True)
class ParsedCert:
    """A certificate or public key that may be sent: one normalised PEM block and its facts."""

    pem: str  # exactly one PEM block (CERTIFICATE or PUBLIC KEY), 64 columns, ends in "\n"
    facts: CertFacts


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    expiry_warning_days: int = 30
    min_rsa_bits: int = 2048


# --------------------------------------------------------------------------------------------
# PEM scanning

_KIND_BY_LABEL = {"CERTIFICATE": "certificate", "PUBLIC KEY": "public-key"}
_LABEL_BY_KIND = {kind: label for label, kind in _KIND_BY_LABEL.items()}

# RFC 7468 encapsulation boundaries. Labels hold no hyphen; markers need not start a line, so
# that a PEM folded onto one line (a YAML `>` scalar) still splits.
_MARKER_RE = re.compile(r"-----(BEGIN|END) ([^\r\n-]*)-----")
# Anything that looks like a header, for diagnostics only (wrong dash count, lower case, SSH2).
_LOOSE_BEGIN_RE = re.compile(r"-{2,}[ \t]*BEGIN[ \t]+([^\r\n-]*?)[ \t]*-{2,}", re.IGNORECASE)
_LOOSE_MARKER_RE = re.compile(r"-{2,}[ \t]*(BEGIN|END)\b", re.IGNORECASE)
# A private key anywhere refuses the whole input. spec/joc-api.md: refuse any input that
# contains `PRIVATE KEY`; also lower-case PEM headers and PuTTY key files. A lower-case "private
# key" in a comment is not a key. Base64 has no space, so Base64 cannot match.
_PRIVATE_KEY_RE = re.compile(
    r"PRIVATE[ _-]KEY|(?i:BEGIN[^\r\n]{0,40}PRIVATE[ _-]KEY)|PuTTY-User-Key-File"
)
_SAFE_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._#]{0,39}")
_SSH_PUBLIC_KEY_RE = re.compile(r"\s*(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-\S+)\s+[A-Za-z0-9+/]")


@dataclass(slots=True)
class _Scan:
    blocks: list[tuple[str, str]]  # (label, body) of complete CERTIFICATE / PUBLIC KEY blocks
    others: list[str]  # labels of other blocks or stray markers, in order, unique
    problems: list[str]  # structural problems of CERTIFICATE / PUBLIC KEY markers


def _scan(text: str) -> _Scan:
    scan = _Scan([], [], [])

    def other(label: str) -> None:
        if label not in scan.others:
            scan.others.append(label)

    def problem(message: str) -> None:
        if message not in scan.problems:
            scan.problems.append(message)

    def unterminated(label: str, start: int, end: int) -> None:
        if _LOOSE_MARKER_RE.search(text, start, end) is not None:
            problem(_malformed_message(label))
        else:
            problem(
                f"has a -----BEGIN {label}----- line without its -----END {label}----- line "
                "(the text is truncated); copy the whole PEM text again"
            )

    open_label: str | None = None
    body_start = previous_end = 0
    for match in _MARKER_RE.finditer(text):
        kind, label = match.group(1), match.group(2)
        if kind == "BEGIN":
            if open_label is not None:
                if open_label in _KIND_BY_LABEL:
                    unterminated(open_label, body_start, match.start())
                else:
                    other(open_label)
            open_label, body_start = label, match.end()
        elif open_label is None:
            if label not in _KIND_BY_LABEL:
                other(label)
            elif _LOOSE_MARKER_RE.search(text, previous_end, match.start()) is not None:
                problem(_malformed_message(label))
            else:
                problem(
                    f"has an -----END {label}----- line without its -----BEGIN {label}----- line "
                    "(the start is cut off); copy the whole PEM text again"
                )
        elif label != open_label:
            if open_label in _KIND_BY_LABEL or label in _KIND_BY_LABEL:
                problem(
                    f"has a -----BEGIN {_safe_label(open_label)}----- block that ends with "
                    f"-----END {_safe_label(label)}-----; fix the PEM header and footer lines"
                )
            else:
                other(open_label)
            open_label = None
        else:
            if label in _KIND_BY_LABEL:
                scan.blocks.append((label, text[body_start : match.start()]))
            else:
                other(label)
            open_label = None
        previous_end = match.end()
    if open_label is not None:
        if open_label in _KIND_BY_LABEL:
            unterminated(open_label, body_start, len(text))
        else:
            other(open_label)
    return scan


def _malformed_message(label: str) -> str:
    return (
        f"has a malformed PEM header or footer line around its {label} block; write them "
        f"exactly as -----BEGIN {label}----- and -----END {label}----- (five dashes each side)"
    )


def _safe_label(label: str) -> str:
    """The label as it may appear in a message: a few short words, never a run of Base64.

    PEM labels are short upper-case words; Base64 is long and mixed-case. A word longer than 15
    characters or in mixed case is not echoed.
    """
    label = label.strip()
    if _SAFE_LABEL_RE.fullmatch(label) and all(
        len(word) <= 15 and (word.isupper() or word.islower() or word.isdigit())
        for word in label.split()
    ):
        return label
    return "(unrecognised)"


def _decode_body(body: str) -> bytes | None:
    """Strict Base64 of a PEM body, ignoring whitespace; None when it is not valid Base64."""
    compact = "".join(body.split())
    if not compact:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _to_pem(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def _as_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    # Latin-1 never fails and keeps every ASCII marker in place; nothing outside blocks is used.
    return data.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


def _has_private_key(text: str) -> bool:
    upper = text.upper()  # a cheap filter first: the regular expression is ten times slower
    if "PRIVATE" not in upper and "PUTTY-USER-KEY-FILE" not in upper:
        return False
    return _PRIVATE_KEY_RE.search(text) is not None


def contains_private_key(data: bytes | str) -> bool:
    """Whether the text mentions a private key (PEM or PuTTY headers); also for live text."""
    try:
        return _has_private_key(_as_text(data))
    except Exception:  # best effort on arbitrary input; callers only want a yes/no
        return False


# --------------------------------------------------------------------------------------------
# Facts

_CURVE_NAMES = {
    "secp192r1": "P-192",
    "secp224r1": "P-224",
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
}

# Curves cryptography cannot load, by OID (name, field size in bits): binary curves and a few
# rare prime curves. Seen only through the DER fallback below.
_EC_CURVE_OIDS: dict[str, tuple[str, int]] = {
    "1.3.132.0.1": ("sect163k1", 163),
    "1.3.132.0.2": ("sect163r1", 163),
    "1.3.132.0.15": ("sect163r2", 163),
    "1.3.132.0.24": ("sect193r1", 193),
    "1.3.132.0.25": ("sect193r2", 193),
    "1.3.132.0.26": ("sect233k1", 233),
    "1.3.132.0.27": ("sect233r1", 233),
    "1.3.132.0.3": ("sect239k1", 239),
    "1.3.132.0.16": ("sect283k1", 283),
    "1.3.132.0.17": ("sect283r1", 283),
    "1.3.132.0.36": ("sect409k1", 409),
    "1.3.132.0.37": ("sect409r1", 409),
    "1.3.132.0.38": ("sect571k1", 571),
    "1.3.132.0.39": ("sect571r1", 571),
    "1.3.132.0.31": ("secp192k1", 192),
    "1.3.132.0.32": ("secp224k1", 224),
    "1.3.132.0.9": ("secp160k1", 160),
    "1.3.132.0.8": ("secp160r1", 160),
    "1.2.156.10197.1.301": ("SM2", 256),
}

_KEY_ALGORITHM_OIDS: dict[str, str] = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.113549.1.1.10": "RSA-PSS",
    "1.2.840.10040.4.1": "DSA",
    "1.2.840.10046.2.1": "DH",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.643.7.1.1.1.1": "GOST R 34.10-2012 (256)",
    "1.2.643.7.1.1.1.2": "GOST R 34.10-2012 (512)",
    "2.16.840.1.101.3.4.3.17": "ML-DSA-44",
    "2.16.840.1.101.3.4.3.18": "ML-DSA-65",
    "2.16.840.1.101.3.4.3.19": "ML-DSA-87",
    "2.16.840.1.101.3.4.4.1": "ML-KEM-512",
    "2.16.840.1.101.3.4.4.2": "ML-KEM-768",
    "2.16.840.1.101.3.4.4.3": "ML-KEM-1024",
}
_OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"


def fingerprint(der: bytes) -> str:
    """SHA-256 of DER bytes (a certificate, or a SubjectPublicKeyInfo), lower-case hex."""
    return hashlib.sha256(der).hexdigest()


def _key_info(public_key: object) -> tuple[str, int, str | None] | None:
    """(key type, size in bits, curve) of a key cryptography could load; None for other types."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        return "EC", curve.key_size, _CURVE_NAMES.get(curve.name, curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(public_key, x25519.X25519PublicKey):
        return "X25519", 256, None
    if isinstance(public_key, x448.X448PublicKey):
        return "X448", 448, None
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size, None
    return None


# A minimal DER reader, used only when cryptography cannot load a public key (binary curves,
# GOST, ...) so that the user is still told which key type it is.


def _tlv(data: bytes, pos: int, limit: int) -> tuple[int, int, int, int]:
    """(tag, start of element, start of content, end) of the DER element at ``pos``."""
    if pos + 2 > limit:
        raise ValueError("short DER")
    tag, length = data[pos], data[pos + 1]
    content = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or content + count > limit:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[content : content + count], "big")
        content += count
    end = content + length
    if end > limit:
        raise ValueError("DER element overruns")
    return tag, pos, content, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    out = []
    pos = start
    while pos < end:
        element = _tlv(data, pos, end)
        out.append(element)
        pos = element[3]
    return out


def _oid_text(content: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OID")
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _spki_key_info(
    der: bytes, start: int = 0, end: int | None = None
) -> tuple[str, int, str | None]:
    """Key type from a SubjectPublicKeyInfo's algorithm identifier."""
    end = len(der) if end is None else end
    tag, _, content, spki_end = _tlv(der, start, end)
    if tag != 0x30:
        raise ValueError("not a SubjectPublicKeyInfo")
    algorithm = _children(der, content, spki_end)[0]
    parts = _children(der, algorithm[2], algorithm[3])
    if not parts or parts[0][0] != 0x06:
        raise ValueError("no algorithm OID")
    oid = _oid_text(der[parts[0][2] : parts[0][3]])
    if oid == _OID_EC_PUBLIC_KEY:
        if len(parts) > 1 and parts[1][0] == 0x06:
            curve_oid = _oid_text(der[parts[1][2] : parts[1][3]])
            name, bits = _EC_CURVE_OIDS.get(curve_oid, (curve_oid, 0))
            return "EC", bits, name
        return "EC", 0, "explicit parameters"
    return _KEY_ALGORITHM_OIDS.get(oid, f"OID {oid}"), 0, None


def _cert_spki_key_info(der: bytes) -> tuple[str, int, str | None]:
    _, _, content, end = _tlv(der, 0, len(der))
    tbs = _children(der, content, end)[0]
    fields = _children(der, tbs[2], tbs[3])
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    spki = fields[5]  # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    return _spki_key_info(der, spki[1], spki[3])


# Issuer name (DER) -> its RFC 4514 string. One CA signs many certificates, and the string costs
# as much as parsing the certificate; the string depends on the DER only. Bounded.
_ISSUER_NAMES: dict[bytes, str] = {}
_ISSUER_NAMES_MAX = 256


def _raw_names(der: bytes) -> tuple[bytes, bytes]:
    """The DER of a certificate's issuer and subject names."""
    _, _, content, end = _tlv(der, 0, len(der))
    tbs = _children(der, content, end)[0]
    fields = _children(der, tbs[2], tbs[3])
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    issuer, subject = fields[2], fields[4]  # serial, signature, issuer, validity, subject
    return der[issuer[1] : issuer[3]], der[subject[1] : subject[3]]


def _name_strings(cert: x509.Certificate, der: bytes) -> tuple[str, str]:
    """(subject, issuer) as RFC 4514 strings; a self-signed certificate's are made once."""
    subject = cert.subject.rfc4514_string()
    try:
        issuer_der, subject_der = _raw_names(der)
    except (ValueError, IndexError):
        return subject, cert.issuer.rfc4514_string()
    if issuer_der == subject_der:
        return subject, subject
    issuer = _ISSUER_NAMES.get(issuer_der)
    if issuer is None:
        issuer = cert.issuer.rfc4514_string()
        if len(_ISSUER_NAMES) >= _ISSUER_NAMES_MAX:
            _ISSUER_NAMES.clear()
        _ISSUER_NAMES[issuer_der] = issuer
    return subject, issuer


def _serial_hex(serial: int) -> str:
    text = f"{serial:x}"
    if serial >= 0 and len(text) % 2:
        text = "0" + text
    return text


def _certificate_facts(der: bytes) -> CertFacts:
    """Facts of a DER certificate; raises ValueError when it is not one."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except x509.InvalidVersion as exc:  # not a ValueError: found by the fuzz test
        raise ValueError("not an X.509 certificate") from exc
    try:
        info = _key_info(cert.public_key())
    except UnsupportedAlgorithm:
        info = None
    key_type, key_size, curve = info if info is not None else _cert_spki_key_info(der)
    try:
        algorithm = cert.signature_hash_algorithm
        signature_hash = algorithm.name if algorithm is not None else None
    except UnsupportedAlgorithm:
        signature_hash = None
    subject, issuer = _name_strings(cert, der)
    return CertFacts(
        kind="certificate",
        key_type=key_type,
        key_size=key_size,
        fingerprint=fingerprint(der),
        subject=subject,
        issuer=issuer,
        serial=_serial_hex(cert.serial_number),
        curve=curve,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        signature_hash=signature_hash,
    )


def _public_key_facts(der: bytes) -> CertFacts:
    """Facts of a DER SubjectPublicKeyInfo; raises ValueError when it is not one."""
    try:
        info = _key_info(serialization.load_der_public_key(der))
    except UnsupportedAlgorithm:
        info = None
    if info is None:
        if _tlv(der, 0, len(der))[3] != len(der):
            raise ValueError("trailing data")
        info = _spki_key_info(der)
    key_type, key_size, curve = info
    return CertFacts(
        kind="public-key",
        key_type=key_type,
        key_size=key_size,
        fingerprint=fingerprint(der),
        curve=curve,
    )


def _facts(kind: str, der: bytes) -> CertFacts:
    if kind == "certificate":
        return _certificate_facts(der)
    return _public_key_facts(der)


# --------------------------------------------------------------------------------------------
# Parsing


def parse_certificate_text(
    data: bytes | str, *, source: str = ""
) -> tuple[ParsedCert | None, list[Finding]]:
    """Parse an inline ``certificate:`` value or a ``certificateFile``'s content.

    Returns the one certificate (or public key) as a normalised PEM block with its facts, and the
    findings; the certificate is None whenever a finding is an error. ``source`` names the input
    in messages (a repository-relative file path such as ``certs/agent.crt``, or
    ``spec.certificate``); it is the subject of each sentence and the file in suggested commands.
    """
    what = source or "the certificate text"
    text = _as_text(data)
    if _has_private_key(text):
        return None, [_private_key_finding(what)]
    if not text.strip():
        return None, [
            _error(
                RULE_PEM_MISSING,
                f"{what} is empty; it must hold one PEM certificate "
                "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
            )
        ]
    scan = _scan(text)
    if scan.problems:
        return None, [_error(RULE_PEM_INVALID, f"{what} {message}") for message in scan.problems]
    if not scan.blocks:
        return None, [_missing_finding(data, text, scan.others, what, source)]
    if len(scan.blocks) > 1:
        return None, [_bundle_finding(scan.blocks, what)]

    label, body = scan.blocks[0]
    kind = _KIND_BY_LABEL[label]
    der = _decode_body(body)
    if der is None:
        empty = not body.strip()
        return None, [
            _error(
                RULE_PEM_INVALID,
                f"{what} has an empty {label} block; copy the whole PEM text again"
                if empty
                else f"{what} has a {label} block that is not valid Base64 (a stray character "
                "or a line cut short); copy the PEM text again without changes",
            )
        ]
    try:
        facts = _facts(kind, der)
    except (ValueError, IndexError, UnsupportedAlgorithm):
        noun = "an X.509 certificate" if kind == "certificate" else "a public key"
        return None, [
            _error(
                RULE_PEM_INVALID,
                f"{what} has a {label} block that does not hold {noun} (damaged or truncated); "
                "copy the PEM text again without changes",
            )
        ]
    findings = [
        Finding(
            Severity.WARNING,
            RULE_PEM_EXTRA_BLOCK,
            f"{what} also holds a -----BEGIN {_safe_label(other)}----- block, which is ignored "
            f"(only the {_LABEL_BY_KIND[kind]} block is sent); remove it",
        )
        for other in scan.others
    ]
    return ParsedCert(pem=_to_pem(label, der), facts=facts), findings


def _error(rule: str, message: str) -> Finding:
    return Finding(Severity.ERROR, rule, message)


def _private_key_finding(what: str) -> Finding:
    # A fixed sentence: no label, no line, nothing of the key.
    return _error(
        RULE_PRIVATE_KEY,
        f"{what} holds a private key; remove it (only the certificate belongs in the repository)",
    )


def _bundle_finding(blocks: list[tuple[str, str]], what: str) -> Finding:
    certificates = sum(1 for label, _ in blocks if label == "CERTIFICATE")
    public_keys = len(blocks) - certificates
    if not public_keys:
        held = f"{certificates} certificates (a chain or bundle)"
    elif not certificates:
        held = f"{public_keys} public keys"
    else:
        held = (
            f"{len(blocks)} blocks ({certificates} certificate{_plural(certificates)}, "
            f"{public_keys} public key{_plural(public_keys)})"
        )
    return _error(
        RULE_PEM_BUNDLE,
        f"{what} holds {held}; keep only the alias's own certificate "
        "(JS7 accepts exactly one certificate or public key)",
    )


_LABEL_HINTS = {
    "CERTIFICATE REQUEST": "a certificate signing request (CSR), not a certificate; have it "
    "signed (for example `openssl x509 -req`) and use the resulting CERTIFICATE",
    "NEW CERTIFICATE REQUEST": "a certificate signing request (CSR), not a certificate; have it "
    "signed (for example `openssl x509 -req`) and use the resulting CERTIFICATE",
    "PKCS7": "a PKCS#7 bundle; extract the certificate with `openssl pkcs7 -print_certs -in {f}` "
    "and keep only the alias's own CERTIFICATE block",
    "CMS": "a CMS (PKCS#7) structure; extract the certificate with "
    "`openssl pkcs7 -print_certs -in {f}` and keep only the alias's own CERTIFICATE block",
    "TRUSTED CERTIFICATE": "an OpenSSL trusted certificate; convert it to a plain CERTIFICATE with "
    "`openssl x509 -in {f}`",
    "X509 CERTIFICATE": "a certificate under an old header; rename the header and footer lines "
    "to -----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----",
    "X509 CRL": "a certificate revocation list, not a certificate; use the CERTIFICATE instead",
    "RSA PUBLIC KEY": "a PKCS#1 RSA public key; use the certificate, or convert the key with "
    "`openssl rsa -RSAPublicKey_in -pubout -in {f}`",
    "SSH2 PUBLIC KEY": "an SSH public key, not an X.509 certificate; use the Agent's certificate",
    "EC PARAMETERS": "EC parameters only, not a certificate; use the CERTIFICATE instead",
}


def _file_arg(source: str) -> str:
    return shlex.quote(source) if source else "FILE"


def _missing_finding(
    data: bytes | str, text: str, others: list[str], what: str, source: str
) -> Finding:
    der_finding = _der_finding(data, what, source)
    if der_finding is not None:
        return der_finding
    need = "one -----BEGIN CERTIFICATE----- block (or PUBLIC KEY) is needed"
    if others:
        label = others[0]
        safe = _safe_label(label)
        hint = _LABEL_HINTS.get(label)
        if hint is not None:
            found = hint.format(f=_file_arg(source))
            return _error(
                RULE_PEM_MISSING, f"{what} holds a -----BEGIN {label}----- block: {found}"
            )
        if safe.upper() in _KIND_BY_LABEL:
            return _error(
                RULE_PEM_MISSING,
                f"{what} has a -----BEGIN {safe}----- header, but PEM headers are upper case; "
                f"write -----BEGIN {safe.upper()}----- and -----END {safe.upper()}-----",
            )
        squeezed = safe.upper().replace(" ", "")
        near = difflib.get_close_matches(squeezed, ["CERTIFICATE", "PUBLICKEY"], n=1, cutoff=0.75)
        if near and safe != "(unrecognised)":
            right = "CERTIFICATE" if near[0] == "CERTIFICATE" else "PUBLIC KEY"
            return _error(
                RULE_PEM_MISSING,
                f"{what} has a -----BEGIN {safe}----- header, which looks misspelled; "
                f"write -----BEGIN {right}----- and -----END {right}-----",
            )
        return _error(
            RULE_PEM_MISSING,
            f"{what} holds a -----BEGIN {safe}----- block, but {need}; use the certificate",
        )
    loose = _LOOSE_BEGIN_RE.search(text)
    if loose is not None:
        safe = _safe_label(loose.group(1))
        if safe.upper() == "SSH2 PUBLIC KEY":
            return _error(RULE_PEM_MISSING, f"{what} holds {_LABEL_HINTS['SSH2 PUBLIC KEY']}")
        return _error(
            RULE_PEM_MISSING,
            f"{what} has a malformed PEM header for {safe} (it must be exactly five dashes, "
            f"BEGIN, the label and five dashes, e.g. -----BEGIN CERTIFICATE-----); fix the "
            "header and footer lines",
        )
    if _SSH_PUBLIC_KEY_RE.match(text):
        return _error(
            RULE_PEM_MISSING,
            f"{what} holds an OpenSSH public key, not an X.509 certificate; "
            "use the Agent's PEM certificate",
        )
    bare = _decode_body(text)
    if bare is not None:
        for kind in ("certificate", "public-key"):
            try:
                _facts(kind, bare)
            except (ValueError, IndexError, UnsupportedAlgorithm):
                continue
            label = _LABEL_BY_KIND[kind]
            return _error(
                RULE_PEM_MISSING,
                f"{what} holds Base64 without PEM header and footer lines; add "
                f"-----BEGIN {label}----- before it and -----END {label}----- after it",
            )
    return _error(
        RULE_PEM_MISSING,
        f"{what} holds no PEM certificate; paste the certificate as one "
        "-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE----- block",
    )


def _der_finding(data: bytes | str, what: str, source: str) -> Finding | None:
    """A finding for DER (binary) input: a certificate, a public key or a private key."""
    if isinstance(data, str):
        if not data.startswith("0"):
            return None
        try:
            raw = data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return None
    else:
        raw = data
    if not raw.startswith(b"\x30"):
        return None
    src = _file_arg(source)
    if source:
        path = PurePosixPath(source)
        out = path.with_suffix(".crt" if path.suffix == ".pem" else ".pem").as_posix()
    else:
        out = "cert.pem"
    try:
        x509.load_der_x509_certificate(raw)
    except (ValueError, x509.InvalidVersion):
        pass
    else:
        return _error(
            RULE_PEM_DER,
            f"{what} is a DER (binary) certificate, but JS7 needs PEM; convert it with "
            f"`openssl x509 -inform DER -in {src} -out {shlex.quote(out)}` and use the PEM file",
        )
    try:
        serialization.load_der_public_key(raw)
    except UnsupportedAlgorithm:
        is_public_key = True
    except ValueError:
        is_public_key = False
    else:
        is_public_key = True
    if is_public_key:
        return _error(
            RULE_PEM_DER,
            f"{what} is a DER (binary) public key, but JS7 needs PEM, preferably a certificate; "
            f"convert it with `openssl pkey -pubin -inform DER -in {src} -out {shlex.quote(out)}`",
        )
    try:
        serialization.load_der_private_key(raw, password=None)
    except TypeError:  # an encrypted private key: still a private key
        return _private_key_finding(what)
    except (ValueError, UnsupportedAlgorithm):
        return None
    return _private_key_finding(what)


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def live_facts(text: str) -> CertFacts | None:
    """Facts of the one certificate or public key block in a live keystore's stored text.

    Best effort: None when the text is garbage, holds no such block or several. Never raises and
    never returns, logs or echoes the text. A private key stored beside the certificate does not
    hide the certificate's facts: ask :func:`contains_private_key` for that.
    """
    try:
        scan = _scan(_as_text(text))
        if scan.problems or len(scan.blocks) != 1:
            return None
        label, body = scan.blocks[0]
        der = _decode_body(body)
        if der is None:
            return None
        return _facts(_KIND_BY_LABEL[label], der)
    except Exception:  # best effort on arbitrary stored text: any failure means "no facts"
        return None


# --------------------------------------------------------------------------------------------
# Health


def _days(count: int) -> str:
    return f"{count} day{_plural(count)}"


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def _whole_days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def _key_name(facts: CertFacts) -> str:
    if facts.key_type == "EC" and facts.curve:
        return f"EC {facts.curve}"
    return facts.key_type


def health_findings(facts: CertFacts, policy: HealthPolicy, now: datetime) -> list[Finding]:
    """Validity, key and signature findings for a parsed certificate or public key at ``now``."""
    now = _aware(now)
    findings: list[Finding] = []
    if facts.is_certificate:
        if facts.not_after is not None:
            left = facts.not_after - now
            if left < timedelta(0):
                ago = _whole_days(-left)
                when = "less than a day ago" if ago == 0 else f"{_days(ago)} ago"
                findings.append(
                    _error(
                        RULE_CERT_EXPIRED,
                        f"certificate expired on {_date(facts.not_after)} ({when})",
                    )
                )
            elif left <= timedelta(days=policy.expiry_warning_days):
                days = _whole_days(left)
                within = "less than a day" if days == 0 else _days(days)
                findings.append(
                    Finding(
                        Severity.WARNING,
                        RULE_CERT_EXPIRING,
                        f"certificate expires in {within} (on {_date(facts.not_after)})",
                    )
                )
        if facts.not_before is not None and now < facts.not_before:
            findings.append(
                _error(
                    RULE_CERT_NOT_YET_VALID,
                    f"certificate is not valid before {_date(facts.not_before)}",
                )
            )
    else:
        message = (
            "a public key without a certificate: JOC's encrypt service and expiry checks need a "
            "certificate"
        )
        if facts.key_type == "EC":
            message += "; JS7's own encrypt tool also rejects EC keys in this form"
        findings.append(Finding(Severity.WARNING, RULE_PUBLIC_KEY_ONLY, message))

    if facts.key_type == "RSA":
        if facts.key_size < policy.min_rsa_bits:
            findings.append(
                _error(
                    RULE_RSA_WEAK,
                    f"RSA {facts.key_size} key is below the minimum of {policy.min_rsa_bits} bits "
                    "(policy.minRsaBits)",
                )
            )
    elif facts.key_type != "EC" or facts.curve not in SUPPORTED_EC_CURVES:
        findings.append(
            _error(
                RULE_KEY_UNSUPPORTED,
                f"{_key_name(facts)} keys cannot be used by JS7 for encryption; "
                "use RSA or EC on a prime curve",
            )
        )

    if facts.signature_hash == "sha1":
        findings.append(
            Finding(Severity.WARNING, RULE_SHA1_SIGNATURE, "certificate is signed with SHA-1")
        )
    elif facts.signature_hash in ("md5", "md4", "md2"):
        findings.append(
            Finding(
                Severity.WARNING,
                RULE_WEAK_SIGNATURE,
                f"certificate is signed with {facts.signature_hash.upper()}",
            )
        )
    return findings


def describe(facts: CertFacts, now: datetime) -> str:
    """One line for humans, e.g. ``RSA 2048, CN=agent-001, expires 2027-01-05 (405 days left),
    SHA256:ab12…``; never any Base64."""
    now = _aware(now)
    parts = [facts.key_description]
    if facts.is_certificate:
        if facts.subject:
            parts.append(facts.subject)
        if facts.not_before is not None and now < facts.not_before:
            parts.append(f"not valid before {_date(facts.not_before)}")
        if facts.not_after is not None:
            left = facts.not_after - now
            if left < timedelta(0):
                ago = _whole_days(-left)
                when = "less than a day ago" if ago == 0 else f"{_days(ago)} ago"
                parts.append(f"expired {_date(facts.not_after)} ({when})")
            else:
                days = _whole_days(left)
                remaining = "less than a day left" if days == 0 else f"{_days(days)} left"
                parts.append(f"expires {_date(facts.not_after)} ({remaining})")
    else:
        parts.append("public key (no certificate)")
    parts.append(facts.short_fingerprint() + "…")
    return ", ".join(parts)
