"""JOC's ``encipherment/encrypt`` service: JS7's encrypted-value format for one certificate.

Follows ``spec/js7-encryption.md``: AES-128-CBC with PKCS#7 padding under a fresh one-time key and
IV; the key wrapped with RSAES-PKCS1-v1_5 (RSA) or BouncyCastle's ECIES in XOR mode (EC). Like
JOC's own service it accepts X.509 certificates only, not bare public keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

_CERT_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----")


class EncryptError(ValueError):
    """The certificate cannot be used; the message is JOC's 420 message."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _wrap_key(public_key: object, key: bytes) -> bytes:
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.encrypt(key, asym_padding.PKCS1v15())
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        ephemeral = ec.generate_private_key(public_key.curve)
        v = ephemeral.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        z = ephemeral.exchange(ec.ECDH(), public_key)
        k = X963KDF(hashes.SHA1(), 48, None).derive(v + z)  # noqa: S303 - JS7's format
        c = bytes(a ^ b for a, b in zip(key, k[32:48], strict=True))
        t = hmac.new(k[:32], c + bytes(8), hashlib.sha1).digest()
        return v + c + t
    raise EncryptError(
        "com.sos.exception.SOSKeyException: The key type of the certificate is not supported "
        "(only RSA and EC keys are)."
    )


def js7_encrypt(plaintext: str, certificate_pem: str) -> str:
    """``enc:<wrapped key> <IV> <ciphertext>`` for the first certificate in ``certificate_pem``."""
    match = _CERT_BLOCK.search(certificate_pem)
    if match is None:
        raise EncryptError(
            "com.sos.exception.SOSKeyException: The value is not a X509 certificate."
        )
    try:
        cert = x509.load_pem_x509_certificate(match.group(0).encode("ascii"))
        public_key = cert.public_key()
    except (ValueError, UnicodeEncodeError) as exc:
        raise EncryptError(
            "com.sos.exception.SOSKeyException: The certificate cannot be read."
        ) from exc
    key = os.urandom(16)
    iv = os.urandom(16)
    wrapped = _wrap_key(public_key, key)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return f"enc:{_b64(wrapped)} {_b64(iv)} {_b64(ciphertext)}"
