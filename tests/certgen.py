"""Real keys and certificates for tests, made with ``cryptography``.

Key generation is slow (RSA-2048 takes about 0.1 s here), so keys are cached at module level per
(type, size, variant) and reused across certificates; pass ``variant=1, 2, ...`` for a second,
distinct key of the same kind. Certificates are cheap and made fresh on every call (each gets a
random serial number), so two calls never give the same certificate.

    from tests import certgen
    pem = certgen.make_cert(certgen.ec_key("P-384"), cn="agent-002", days=30)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    x448,
    x25519,
)
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

__all__ = [
    "HashName",
    "SubjectKey",
    "der_cert",
    "dsa_key",
    "ec_key",
    "ed448_key",
    "ed25519_key",
    "make_cert",
    "make_cert_object",
    "private_key_pem",
    "public_key_pem",
    "rsa_key",
    "x448_key",
    "x25519_key",
]

# Every private key type a certificate can be made for (X25519/X448 need another issuer key).
SubjectKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | x25519.X25519PrivateKey
    | x448.X448PrivateKey
    | dsa.DSAPrivateKey
)

_SUBJECT_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    x25519.X25519PrivateKey,
    x448.X448PrivateKey,
    dsa.DSAPrivateKey,
)

HashName = Literal["sha1", "md5", "sha224", "sha256", "sha384", "sha512"]

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-192": ec.SECP192R1(),
    "P-224": ec.SECP224R1(),
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "secp256k1": ec.SECP256K1(),
    "brainpoolP256r1": ec.BrainpoolP256R1(),
    "brainpoolP384r1": ec.BrainpoolP384R1(),
    "brainpoolP512r1": ec.BrainpoolP512R1(),
}
_CURVES.update({curve.name: curve for curve in list(_CURVES.values())})  # "secp256r1", ...

_SIGNING_HASHES: dict[str, hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
# Deliberately weak hashes, to make certificates that the health checks must flag.
_WEAK_HASHES: dict[str, hashes.SHA1 | hashes.MD5] = {
    "sha1": hashes.SHA1(),  # noqa: S303
    "md5": hashes.MD5(),  # noqa: S303
}

# AlgorithmIdentifier DER of RSA PKCS#1 v1.5 signatures: cryptography refuses to sign certificates
# with SHA-1 or MD5, so such certificates are signed with SHA-256 and the signature is redone.
_RSA_SIGNATURE_ALGORITHMS = {
    "sha256": bytes.fromhex("300d06092a864886f70d01010b0500"),
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "md5": bytes.fromhex("300d06092a864886f70d0101040500"),
}

_keys: dict[tuple[str, str, int], PrivateKeyTypes] = {}


def rsa_key(bits: int = 2048, *, variant: int = 0) -> rsa.RSAPrivateKey:
    key = _keys.get(("rsa", str(bits), variant))
    if not isinstance(key, rsa.RSAPrivateKey):
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        _keys["rsa", str(bits), variant] = key
    return key


def ec_key(curve: str = "P-256", *, variant: int = 0) -> ec.EllipticCurvePrivateKey:
    """An EC key on a named curve: "P-256", "P-384", "P-521", "secp256k1", "brainpoolP256r1"..."""
    key = _keys.get(("ec", curve, variant))
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        try:
            named = _CURVES[curve]
        except KeyError:
            raise ValueError(f"unknown curve {curve!r}; known: {sorted(_CURVES)}") from None
        key = ec.generate_private_key(named)
        _keys["ec", curve, variant] = key
    return key


def ed25519_key(*, variant: int = 0) -> ed25519.Ed25519PrivateKey:
    key = _keys.get(("ed25519", "", variant))
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        key = ed25519.Ed25519PrivateKey.generate()
        _keys["ed25519", "", variant] = key
    return key


def ed448_key(*, variant: int = 0) -> ed448.Ed448PrivateKey:
    key = _keys.get(("ed448", "", variant))
    if not isinstance(key, ed448.Ed448PrivateKey):
        key = ed448.Ed448PrivateKey.generate()
        _keys["ed448", "", variant] = key
    return key


def x25519_key(*, variant: int = 0) -> x25519.X25519PrivateKey:
    key = _keys.get(("x25519", "", variant))
    if not isinstance(key, x25519.X25519PrivateKey):
        key = x25519.X25519PrivateKey.generate()
        _keys["x25519", "", variant] = key
    return key


def x448_key(*, variant: int = 0) -> x448.X448PrivateKey:
    key = _keys.get(("x448", "", variant))
    if not isinstance(key, x448.X448PrivateKey):
        key = x448.X448PrivateKey.generate()
        _keys["x448", "", variant] = key
    return key


def dsa_key(bits: int = 2048, *, variant: int = 0) -> dsa.DSAPrivateKey:
    """A DSA key (2048 bits takes about 0.2 s; 1024 about 0.03 s)."""
    key = _keys.get(("dsa", str(bits), variant))
    if not isinstance(key, dsa.DSAPrivateKey):
        key = dsa.generate_private_key(key_size=bits)
        _keys["dsa", str(bits), variant] = key
    return key


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(key: SubjectKey) -> x509.KeyUsage:
    encipher = isinstance(key, rsa.RSAPrivateKey)
    agree = isinstance(
        key, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey
    )
    sign = not isinstance(key, x25519.X25519PrivateKey | x448.X448PrivateKey)
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=encipher,
        key_agreement=agree,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _resign_rsa(cert: x509.Certificate, issuer: rsa.RSAPrivateKey, hash: str) -> x509.Certificate:
    """The certificate signed again with RSA PKCS#1 v1.5 and a hash cryptography won't sign with."""
    old, new = _RSA_SIGNATURE_ALGORITHMS["sha256"], _RSA_SIGNATURE_ALGORITHMS[hash]
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(old) == 1, "expected one sha256WithRSAEncryption identifier in the TBS"
    tbs = tbs.replace(old, new)
    signature = issuer.sign(tbs, padding.PKCS1v15(), _WEAK_HASHES[hash])
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    content = tbs + new + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(content)) + content)


def make_cert_object(
    key: SubjectKey | None = None,
    *,
    cn: str = "agent-001",
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    hash: HashName | None = "sha256",
    key_usage: bool = True,
    issuer_key: CertificateIssuerPrivateKeyTypes | None = None,
    issuer_cn: str | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """A certificate for ``key`` (default: the cached RSA-2048 key), self-signed unless
    ``issuer_key`` is given (X25519/X448 keys cannot sign: they default to the RSA-2048 key).

    Validity: ``not_before`` defaults to one day before now (or before ``not_after`` when that is
    earlier); ``not_after`` to now + ``days`` (negative days give an expired certificate).
    ``hash`` is ignored for Ed25519/Ed448 issuers; "sha1" and "md5" need an RSA issuer.
    """
    key = rsa_key() if key is None else key
    now = datetime.now(UTC)
    if not_after is None:
        not_after = now + timedelta(days=days)
    if not_before is None:
        not_before = min(now, not_after) - timedelta(days=1)
    if issuer_key is None:
        if isinstance(key, x25519.X25519PrivateKey | x448.X448PrivateKey):
            issuer_key = rsa_key()
        else:
            issuer_key = key
    if issuer_cn is None:
        issuer_cn = cn if issuer_key is key else f"{cn} issuer"
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if key_usage:
        builder = builder.add_extension(_key_usage(key), critical=True)

    if isinstance(issuer_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return builder.sign(issuer_key, None)
    if hash is None:
        raise ValueError("hash=None is only for Ed25519/Ed448 issuers")
    if hash in ("sha1", "md5"):
        if not isinstance(issuer_key, rsa.RSAPrivateKey):
            raise ValueError(f"a {hash} signature needs an RSA issuer key")
        return _resign_rsa(builder.sign(issuer_key, hashes.SHA256()), issuer_key, hash)
    return builder.sign(issuer_key, _SIGNING_HASHES[hash])


def make_cert(
    key: SubjectKey | None = None,
    *,
    cn: str = "agent-001",
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    hash: HashName | None = "sha256",
    key_usage: bool = True,
    issuer_key: CertificateIssuerPrivateKeyTypes | None = None,
    issuer_cn: str | None = None,
    serial: int | None = None,
) -> str:
    """A certificate as PEM text (one CERTIFICATE block, 64 columns, ending in a newline)."""
    cert = make_cert_object(
        key,
        cn=cn,
        days=days,
        not_before=not_before,
        not_after=not_after,
        hash=hash,
        key_usage=key_usage,
        issuer_key=issuer_key,
        issuer_cn=issuer_cn,
        serial=serial,
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def der_cert(
    key: SubjectKey | None = None,
    *,
    cn: str = "agent-001",
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    hash: HashName | None = "sha256",
    key_usage: bool = True,
    issuer_key: CertificateIssuerPrivateKeyTypes | None = None,
    issuer_cn: str | None = None,
    serial: int | None = None,
) -> bytes:
    """A certificate as DER bytes; same arguments as :func:`make_cert`."""
    cert = make_cert_object(
        key,
        cn=cn,
        days=days,
        not_before=not_before,
        not_after=not_after,
        hash=hash,
        key_usage=key_usage,
        issuer_key=issuer_key,
        issuer_cn=issuer_cn,
        serial=serial,
    )
    return cert.public_bytes(serialization.Encoding.DER)


def public_key_pem(key: SubjectKey | CertificatePublicKeyTypes) -> str:
    """The SubjectPublicKeyInfo PEM (``BEGIN PUBLIC KEY``) of a private or public key."""
    public = key.public_key() if isinstance(key, _SUBJECT_KEY_TYPES) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def private_key_pem(
    key: PrivateKeyTypes,
    *,
    fmt: Literal["pkcs8", "traditional", "openssh"] = "pkcs8",
    password: bytes | None = None,
) -> str:
    """The private key as PEM: unencrypted PKCS#8 (``BEGIN PRIVATE KEY``) by default.

    ``fmt="traditional"`` gives PKCS#1 / SEC1 (``BEGIN RSA PRIVATE KEY``, ``BEGIN EC PRIVATE
    KEY``), ``"openssh"`` the OpenSSH format; ``password`` encrypts (``BEGIN ENCRYPTED PRIVATE
    KEY`` for PKCS#8).
    """
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
        "openssh": serialization.PrivateFormat.OpenSSH,
    }
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, formats[fmt], encryption).decode("ascii")
