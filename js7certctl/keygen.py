"""Key pairs and self-signed certificates (or CSRs) for Agents."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from js7certctl.errors import UsageError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

KEY_TYPES = ("rsa:2048", "rsa:3072", "rsa:4096", "ec:P-256", "ec:P-384", "ec:secp256k1")
DEFAULT_KEY_TYPE = "rsa:3072"
_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
}


def generate_key(key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
    family, _, param = key_type.partition(":")
    if family == "rsa" and param in ("2048", "3072", "4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(param))
    if family == "ec" and param in _CURVES:
        return ec.generate_private_key(_CURVES[param])
    raise UsageError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(key: PrivateKey) -> x509.KeyUsage:
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=is_rsa,
        data_encipherment=False,
        key_agreement=not is_rsa,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def self_signed_certificate(
    key: PrivateKey, common_name: str, days: int, now: dt.datetime | None = None
) -> str:
    """A self-signed certificate (PEM) for ``key``, keyUsage keyEncipherment (RSA) or
    keyAgreement (EC), valid from now for ``days`` days."""
    if days < 1:
        raise UsageError("--days must be at least 1")
    now = now or dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key), critical=True)
    )
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_signing_request(key: PrivateKey, common_name: str) -> str:
    """A CSR (PEM) for a CA to sign, with the same key usage as the self-signed certificate."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(common_name))
        .add_extension(_key_usage(key), critical=True)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8: Agents cannot use password-protected keys."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
