"""The JS7 encrypted-value format (spec/js7-encryption.md): pure functions over bytes and keys.

A value is ``enc:<wrapped key> <IV> <ciphertext>``: a fresh AES-128 one-time key and IV encrypt the
secret in CBC mode with PKCS#7 padding, and the one-time key is wrapped for the receiver's public
key, with RSAES-PKCS1-v1_5 for RSA and BouncyCastle's ECIES in XOR mode for EC keys. An encrypted
file has the same wrapped key and IV, and a body made of each 16-byte ciphertext block
Base64-encoded on its own.

The format has no integrity protection on the secret (CBC without a MAC; JS7's design). A damaged
IV or ciphertext is detected only when it breaks the padding; a wrong key is detected by the
wrapped key's length, the RSA padding or the ECIES tag, the one-time key's length and the PKCS#7
padding.

Nothing here prints, and no message holds a secret, a key, the one-time key or decrypted bytes.
"""

from __future__ import annotations

import binascii
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, x448, x25519
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.ec import (
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from js7certctl.errors import CryptoError

__all__ = [
    "PREFIX",
    "BadKeyError",
    "DamagedValueError",
    "EncryptedValue",
    "Encryptor",
    "KeyPasswordRequiredError",
    "NotAJs7ValueError",
    "PrivateKey",
    "PublicKey",
    "UnsupportedKeyError",
    "WrongKeyError",
    "WrongKeyPasswordError",
    "decrypt_file",
    "decrypt_value",
    "describe_key",
    "encrypt_file",
    "encrypt_value",
    "key_matches",
    "load_private_key",
    "load_public_key",
    "parse_value",
]

PREFIX = "enc:"

PublicKey: TypeAlias = RSAPublicKey | EllipticCurvePublicKey
PrivateKey: TypeAlias = RSAPrivateKey | EllipticCurvePrivateKey

KEY_SIZE = 16  # AES-128 one-time key
IV_SIZE = 16
BLOCK_SIZE = 16
FILE_CHUNK_SIZE = 24  # one 16-byte block in Base64
_ECIES_MAC_KEY_SIZE = 32
_ECIES_TAG_SIZE = 20  # HMAC-SHA1
_ECIES_LENGTH_TAG = bytes(8)  # the length tag of the absent encoding vector

FIELD_WRAPPED_KEY = "wrapped key"
FIELD_IV = "IV"
FIELD_CIPHERTEXT = "ciphertext"
_FIELDS = (FIELD_WRAPPED_KEY, FIELD_IV, FIELD_CIPHERTEXT)

_VALUE_SHAPE = "a JS7 value is `enc:<wrapped key> <IV> <ciphertext>`, three Base64 fields"


# --------------------------------------------------------------------------------------- errors


class NotAJs7ValueError(CryptoError):
    """The text is not in the JS7 format (fields, Base64, file body); ``field`` names the part."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class DamagedValueError(CryptoError):
    """The value is well-formed text but a field has an impossible length."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class WrongKeyError(CryptoError):
    """The value does not open with this key: it was encrypted for another key, or is damaged."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(
            f"this value was not encrypted for this key, or it is damaged: {detail}.",
            hint="Check that the private key belongs to the certificate the value was encrypted "
            "for, and that the value was copied completely.",
        )
        self.field = field


class BadKeyError(CryptoError):
    """A key or certificate file cannot be used (unreadable, wrong kind of file, ...)."""


class UnsupportedKeyError(BadKeyError):
    """The key type (Ed25519, X25519, DSA, a binary curve, ...) is not supported by JS7."""

    def __init__(self, key_type: str) -> None:
        super().__init__(
            f"{key_type} keys cannot be used for JS7 encryption; "
            "JS7 supports RSA keys and EC keys on named prime curves.",
            hint="Use an RSA key (2048 bits or more) or an EC key on P-256, P-384 or P-521.",
        )
        self.key_type = key_type


class KeyPasswordRequiredError(BadKeyError):
    """The private key is encrypted and no password was given (the CLI may prompt for one)."""


class WrongKeyPasswordError(BadKeyError):
    """The password does not decrypt the private key."""


# ----------------------------------------------------------------------------------- the value


@dataclass(frozen=True, slots=True)
class EncryptedValue:
    """One JS7 encrypted value: the wrapped one-time key, the IV and the AES-CBC ciphertext."""

    wrapped_key: bytes
    iv: bytes
    ciphertext: bytes

    def to_string(self, *, prefix: bool = True) -> str:
        """``enc:<wrapped key> <IV> <ciphertext>`` (standard Base64, padded, one line)."""
        text = f"{_b64(self.wrapped_key)} {_b64(self.iv)} {_b64(self.ciphertext)}"
        return PREFIX + text if prefix else text


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# A field as Java's basic Base64 decoder takes it: standard alphabet, optional '=' padding.
_B64_FIELD = re.compile(r"[A-Za-z0-9+/]*(={0,2})")
_B64_CHAR = re.compile(r"[A-Za-z0-9+/=]")


def _b64_field(text: str, field: str) -> bytes:
    """Decode one field exactly as strictly and as leniently as JS7 (java.util.Base64 basic)."""
    match = _B64_FIELD.fullmatch(text)
    if match is None:
        position = next(
            (i for i, ch in enumerate(text) if not _B64_CHAR.fullmatch(ch)),
            None,
        )
        if position is None:  # only '=' out of place
            reason = "its '=' padding is in the wrong place"
        else:
            char = text[position]
            if char in "\r\n":
                reason = f"it holds a line break at character {position + 1}"
            elif char in "-_":
                reason = (
                    f"it uses the URL-safe Base64 alphabet ('-' or '_' at character "
                    f"{position + 1}); JS7 needs the standard alphabet ('+' and '/')"
                )
            elif char.isspace():
                reason = f"it holds white space at character {position + 1}"
            else:
                reason = (
                    f"it holds a character outside the Base64 alphabet at character {position + 1}"
                )
        raise NotAJs7ValueError(
            f"the {field} field is not valid Base64: {reason}.", field=field, hint=_VALUE_SHAPE
        )
    pad = len(match.group(1))
    data_len = len(text) - pad
    rest = data_len % 4
    # Java: missing padding is fine, but padding must complete its unit; one dangling character
    # never is.
    if rest == 1 or (pad == 1 and rest != 3) or (pad == 2 and rest != 2):
        raise NotAJs7ValueError(
            f"the {field} field is not valid Base64: its length or padding is impossible "
            "(it may be truncated).",
            field=field,
            hint=_VALUE_SHAPE,
        )
    core = text[:data_len]
    if rest:
        core += "=" * (4 - rest)
    return binascii.a2b_base64(core.encode("ascii"))


def parse_value(text: str) -> EncryptedValue:
    """Parse ``[enc:]<wrapped key> <IV> <ciphertext>`` as JS7 does.

    Surrounding white space is stripped and one leading ``enc:`` is optional; fields are separated
    by single spaces and fields after the third are ignored. Raises :class:`NotAJs7ValueError`.
    """
    stripped = text.strip()
    if stripped.startswith(PREFIX):
        stripped = stripped[len(PREFIX) :]
    parts = stripped.split(" ", 3)[:3] if stripped else []
    if len(parts) < 3:
        raise NotAJs7ValueError(
            f"this is not a JS7 encrypted value: it has {len(parts)} field(s) where three are "
            "needed.",
            hint=_VALUE_SHAPE + " separated by single spaces.",
        )
    decoded: list[bytes] = []
    for field, part in zip(_FIELDS, parts, strict=True):
        if not part:
            raise NotAJs7ValueError(
                f"the {field} field is empty (two spaces in a row, or a space after `enc:`?).",
                field=field,
                hint=_VALUE_SHAPE + " separated by single spaces.",
            )
        decoded.append(_b64_field(part, field))
    return EncryptedValue(wrapped_key=decoded[0], iv=decoded[1], ciphertext=decoded[2])


# ---------------------------------------------------------------------------------------- keys

_CURVE_DISPLAY = {
    "secp192r1": "P-192",
    "secp224r1": "P-224",
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
}


def describe_key(key: PublicKey | PrivateKey) -> str:
    """A short, secret-free description: ``RSA-3072`` or ``EC P-256``."""
    if isinstance(key, RSAPublicKey | RSAPrivateKey):
        return f"RSA-{key.key_size}"
    name = key.curve.name
    return f"EC {_CURVE_DISPLAY.get(name, name)}"


def _key_type_name(key: object) -> str:
    names: tuple[tuple[type, str], ...] = (
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed25519.Ed25519PrivateKey, "Ed25519"),
        (ed448.Ed448PublicKey, "Ed448"),
        (ed448.Ed448PrivateKey, "Ed448"),
        (x25519.X25519PublicKey, "X25519"),
        (x25519.X25519PrivateKey, "X25519"),
        (x448.X448PublicKey, "X448"),
        (x448.X448PrivateKey, "X448"),
        (dsa.DSAPublicKey, "DSA"),
        (dsa.DSAPrivateKey, "DSA"),
    )
    for cls, name in names:
        if isinstance(key, cls):
            return name
    # DHPublicKey -> DH, and so on for types without an entry above
    name = type(key).__name__
    return name.removesuffix("PublicKey").removesuffix("PrivateKey") or name


def _check_curve(curve: ec.EllipticCurve) -> None:
    # Binary (characteristic-two) curves are named sect*/c2*; cryptography >= 45 cannot load them.
    if curve.name.startswith(("sect", "c2")):
        raise UnsupportedKeyError(f"EC (binary curve {curve.name})")


def _usable_public_key(key: object) -> PublicKey:
    if isinstance(key, RSAPublicKey):
        return key
    if isinstance(key, EllipticCurvePublicKey):
        _check_curve(key.curve)
        return key
    raise UnsupportedKeyError(_key_type_name(key))


def _usable_private_key(key: object) -> PrivateKey:
    if isinstance(key, RSAPrivateKey):
        return key
    if isinstance(key, EllipticCurvePrivateKey):
        _check_curve(key.curve)
        return key
    raise UnsupportedKeyError(_key_type_name(key))


# --- a minimal DER reader, only to name key types that cryptography cannot load

_ALGORITHM_NAMES = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.2.1": "EC",
    "1.2.840.10040.4.1": "DSA",
    "1.2.840.113549.1.3.1": "DH",
    "1.2.840.10046.2.1": "DH (X9.42)",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.643.7.1.1.1.1": "GOST R 34.10-2012",
    "1.2.643.7.1.1.1.2": "GOST R 34.10-2012",
    "1.2.156.10197.1.301": "SM2",
}
_BINARY_CURVES = {
    "1.3.132.0.1": "sect163k1",
    "1.3.132.0.2": "sect163r1",
    "1.3.132.0.3": "sect239k1",
    "1.3.132.0.4": "sect113r1",
    "1.3.132.0.5": "sect113r2",
    "1.3.132.0.15": "sect163r2",
    "1.3.132.0.16": "sect283k1",
    "1.3.132.0.17": "sect283r1",
    "1.3.132.0.22": "sect131r1",
    "1.3.132.0.23": "sect131r2",
    "1.3.132.0.24": "sect193r1",
    "1.3.132.0.25": "sect193r2",
    "1.3.132.0.26": "sect233k1",
    "1.3.132.0.27": "sect233r1",
    "1.3.132.0.36": "sect409k1",
    "1.3.132.0.37": "sect409r1",
    "1.3.132.0.38": "sect571k1",
    "1.3.132.0.39": "sect571r1",
}


class _Der:
    """One DER item: its tag, where it starts, where its content starts and where it ends."""

    __slots__ = ("content", "end", "start", "tag")

    def __init__(self, data: bytes, pos: int) -> None:
        self.start = pos
        self.tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 4:
                raise ValueError("unsupported DER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        self.content = pos
        self.end = pos + length
        if self.end > len(data):
            raise ValueError("truncated DER")

    def children(self, data: bytes) -> list[_Der]:
        items = []
        pos = self.content
        while pos < self.end:
            item = _Der(data, pos)
            items.append(item)
            pos = item.end
        return items


def _decode_oid(raw: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _describe_algorithm(data: bytes, algorithm: _Der) -> str:
    """Name an AlgorithmIdentifier's key type, e.g. ``EC (binary curve sect283k1)``."""
    items = algorithm.children(data)
    oid = _decode_oid(data[items[0].content : items[0].end])
    name = _ALGORITHM_NAMES.get(oid, f"algorithm {oid}")
    if name == "EC" and len(items) > 1 and items[1].tag == 0x06:
        curve = _decode_oid(data[items[1].content : items[1].end])
        if curve in _BINARY_CURVES:
            return f"EC (binary curve {_BINARY_CURVES[curve]})"
        if curve.startswith("1.2.840.10045.3.0."):
            return f"EC (binary curve {curve})"
        return f"EC (curve {curve})"
    return name


def _describe_spki(der: bytes) -> str:
    """SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }."""
    return _describe_algorithm(der, _Der(der, 0).children(der)[0])


def _describe_pkcs8(der: bytes) -> str:
    """PrivateKeyInfo: SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, ... }."""
    return _describe_algorithm(der, _Der(der, 0).children(der)[1])


def _describe_certificate_key(tbs: bytes) -> str:
    """TBSCertificate: [0] version, serial, signature, issuer, validity, subject, SPKI, ..."""
    items = _Der(tbs, 0).children(tbs)
    if items[0].tag == 0xA0:
        items = items[1:]
    spki = items[5]
    return _describe_algorithm(tbs, spki.children(tbs)[0])


def _unsupported_from_der(describe: Callable[[], str]) -> UnsupportedKeyError:
    try:
        return UnsupportedKeyError(describe())
    except (ValueError, IndexError):
        return UnsupportedKeyError("this key type")


# --- PEM handling

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_ANY_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_PEM_BEGIN = b"-----BEGIN "

_PUBLIC_LABELS = (b"CERTIFICATE", b"PUBLIC KEY", b"RSA PUBLIC KEY")
_PRIVATE_LABELS = (
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"DSA PRIVATE KEY",
)


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    return [(m.group(1).decode("ascii"), m.group(0) + b"\n") for m in _PEM_BLOCK.finditer(data)]


WARN_DER = (
    "the file is DER-encoded; JS7's own tools and JOC Cockpit need PEM "
    "(convert it with `openssl x509 -inform DER -outform PEM`)."
)
WARN_EC_PUBLIC_KEY = (
    "an EC key in a 'BEGIN PUBLIC KEY' block does not work with JS7's own tools; "
    "use the certificate instead."
)
WARN_RSA_PUBLIC_KEY = (
    "JOC Cockpit accepts only certificates for encryption (JS7's command-line tool also "
    "accepts this public key); prefer the certificate."
)
WARN_PKCS1_PUBLIC_KEY = (
    "a PKCS#1 'BEGIN RSA PUBLIC KEY' block does not work with JS7's own tools, which need a "
    "certificate or a 'BEGIN PUBLIC KEY' block; use the certificate instead."
)


def load_public_key(data: bytes) -> tuple[PublicKey, list[str]]:
    """Load the receiver's key from a PEM certificate or public key (DER is accepted too).

    Returns the key and warnings for forms that JS7's own tools would not accept. Raises
    :class:`UnsupportedKeyError` for key types JS7 cannot use and :class:`BadKeyError` otherwise;
    a file holding a private key is refused without echoing any of it.
    """
    if _ANY_PRIVATE_KEY.search(data):
        raise BadKeyError(
            "this file holds a private key, not a certificate or public key; "
            "encryption needs the receiver's certificate.",
            hint="Give the certificate, and keep the private key out of the repository.",
        )
    blocks = _pem_blocks(data)
    if not blocks:
        if _PEM_BEGIN in data:
            raise BadKeyError("the PEM text in this file is incomplete or damaged.")
        return _load_der_public(data)
    usable = [(label, block) for label, block in blocks if label.encode() in _PUBLIC_LABELS]
    if not usable:
        labels = ", ".join(sorted({label for label, _ in blocks}))
        raise BadKeyError(
            f"this file holds no certificate or public key (found: {labels}).",
        )
    if len(usable) > 1:
        raise BadKeyError(
            f"this file holds {len(usable)} certificates or public keys; "
            "give a file with exactly one (the receiver's).",
        )
    label, block = usable[0]
    warnings: list[str] = []
    if label == "CERTIFICATE":
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError:
            raise BadKeyError("the certificate in this file cannot be parsed.") from None
        key = _certificate_key(cert)
    else:
        try:
            loaded = serialization.load_pem_public_key(block)
        except UnsupportedAlgorithm:
            raise _unsupported_from_der(lambda: _describe_spki(_pem_body(block))) from None
        except ValueError:
            raise BadKeyError("the public key in this file cannot be parsed.") from None
        key = _usable_public_key(loaded)
        if label == "RSA PUBLIC KEY":
            warnings.append(WARN_PKCS1_PUBLIC_KEY)
        elif isinstance(key, EllipticCurvePublicKey):
            warnings.append(WARN_EC_PUBLIC_KEY)
        else:
            warnings.append(WARN_RSA_PUBLIC_KEY)
    return key, warnings


def _pem_body(block: bytes) -> bytes:
    lines = block.strip().splitlines()[1:-1]
    return binascii.a2b_base64(b"".join(line for line in lines if b":" not in line))


def _certificate_key(cert: x509.Certificate) -> PublicKey:
    try:
        loaded = cert.public_key()
    except UnsupportedAlgorithm:
        raise _unsupported_from_der(
            lambda: _describe_certificate_key(cert.tbs_certificate_bytes)
        ) from None
    except ValueError:
        raise BadKeyError("the certificate's public key cannot be parsed.") from None
    return _usable_public_key(loaded)


def _load_der_public(data: bytes) -> tuple[PublicKey, list[str]]:
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        pass
    else:
        return _certificate_key(cert), [WARN_DER]
    try:
        loaded = serialization.load_der_public_key(data)
    except UnsupportedAlgorithm:
        raise _unsupported_from_der(lambda: _describe_spki(data)) from None
    except ValueError:
        raise BadKeyError(
            "this file holds neither a certificate nor a public key (PEM or DER)."
        ) from None
    key = _usable_public_key(loaded)
    return key, [
        WARN_DER,
        WARN_EC_PUBLIC_KEY if isinstance(key, EllipticCurvePublicKey) else WARN_RSA_PUBLIC_KEY,
    ]


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Load a receiver's private key: PKCS#8, PKCS#1 or SEC1, in PEM (or DER).

    A leading ``EC PARAMETERS`` block is skipped. Encrypted PKCS#8 and legacy OpenSSL-encrypted
    PEM need ``password``: without one :class:`KeyPasswordRequiredError` is raised, with a wrong
    one :class:`WrongKeyPasswordError`. A password given for an unencrypted key is ignored.
    """
    blocks = _pem_blocks(data)
    if not blocks:
        if _PEM_BEGIN in data:
            raise BadKeyError("the PEM text in this key file is incomplete or damaged.")
        return _load_der_private(data, password)
    keys = [(label, block) for label, block in blocks if label.endswith("PRIVATE KEY")]
    if not keys:
        labels = ", ".join(sorted({label for label, _ in blocks}))
        raise BadKeyError(f"this file holds no private key (found: {labels}).")
    if len(keys) > 1:
        raise BadKeyError(
            f"this file holds {len(keys)} private keys; give a file with exactly one."
        )
    label, block = keys[0]
    if label.encode() not in _PRIVATE_LABELS:
        kind = label.removesuffix(" PRIVATE KEY")
        raise BadKeyError(
            f"this private key is in the {kind} format, which is not supported; "
            "JS7 reads PKCS#8, PKCS#1 and SEC1 PEM keys.",
            hint="Convert it, e.g. with `ssh-keygen -p -m PKCS8` or `openssl pkcs8 -topk8`.",
        )
    encrypted = label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
    if encrypted and password is None:
        raise KeyPasswordRequiredError(
            "the private key is password-protected; give its password.",
        )
    try:
        loaded = serialization.load_pem_private_key(block, password if encrypted else None)
    except UnsupportedAlgorithm:
        if encrypted:
            raise BadKeyError(
                "the private key is encrypted with a scheme, or is of a type, this tool "
                "cannot read.",
                hint="Re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`.",
            ) from None
        raise _unsupported_from_der(lambda: _describe_pkcs8(_pem_body(block))) from None
    except (ValueError, TypeError):
        if encrypted:
            raise WrongKeyPasswordError(
                "the private key password is wrong (or the key file is damaged)."
            ) from None
        raise BadKeyError("the private key in this file cannot be parsed.") from None
    return _usable_private_key(loaded)


def _load_der_private(data: bytes, password: bytes | None) -> PrivateKey:
    try:
        loaded = serialization.load_der_private_key(data, password)
    except TypeError:
        if password is None:
            raise KeyPasswordRequiredError(
                "the private key is password-protected; give its password."
            ) from None
        # A password was given for an unencrypted key: ignore it.
        try:
            loaded = serialization.load_der_private_key(data, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise BadKeyError("this file does not hold a readable private key.") from None
    except UnsupportedAlgorithm:
        raise BadKeyError("this private key's type or encryption is not supported.") from None
    except ValueError:
        if password is not None:
            raise WrongKeyPasswordError(
                "the private key password is wrong, or this file does not hold a private key."
            ) from None
        raise BadKeyError("this file does not hold a readable private key (PEM or DER).") from None
    return _usable_private_key(loaded)


# ---------------------------------------------------------------------------------- encryption

_SHA1 = hashes.SHA1()  # noqa: S303  (fixed by the format: BouncyCastle ECIES with KDF2/HMAC-SHA1)
_ECDH = ec.ECDH()
_PKCS1V15 = asym_padding.PKCS1v15()  # fixed by the format: JS7 rejects OAEP


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _ecies_keys(v: bytes, z: bytes) -> tuple[bytes, bytes]:
    """(MAC key, keystream) = KDF2-SHA1(V || Z) split 32 + 16."""
    k = X963KDF(algorithm=_SHA1, length=_ECIES_MAC_KEY_SIZE + KEY_SIZE, sharedinfo=None).derive(
        v + z
    )
    return k[:_ECIES_MAC_KEY_SIZE], k[_ECIES_MAC_KEY_SIZE:]


def _ecies_tag(mac_key: bytes, c: bytes) -> HMAC:
    mac = HMAC(mac_key, _SHA1)
    mac.update(c + _ECIES_LENGTH_TAG)
    return mac


def _field_size(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


class Encryptor:
    """Encrypts many values for one public key (the batch hot path).

    The key is checked once; each call draws 32 random bytes for the one-time key and IV.
    """

    __slots__ = ("_wrap", "public_key", "wrapped_key_size")

    def __init__(self, public_key: PublicKey) -> None:
        key = _usable_public_key(public_key)
        self.public_key: PublicKey = key
        self._wrap: Callable[[bytes], bytes]
        if isinstance(key, RSAPublicKey):
            size = (key.key_size + 7) // 8
            if size < KEY_SIZE + 11:
                raise UnsupportedKeyError(f"RSA-{key.key_size} (too small)")
            self.wrapped_key_size = size
            self._wrap = _rsa_wrapper(key)
        else:
            self.wrapped_key_size = 1 + 2 * _field_size(key.curve) + KEY_SIZE + _ECIES_TAG_SIZE
            self._wrap = _ec_wrapper(key)

    def encrypt(self, plaintext: bytes) -> EncryptedValue:
        """Encrypt one secret (its UTF-8 bytes) with a fresh one-time key and IV."""
        ciphertext, one_time_key, iv = _aes_encrypt(plaintext)
        return EncryptedValue(self._wrap(one_time_key), iv, ciphertext)

    def encrypt_file(self, data: bytes) -> tuple[str, str, str]:
        """(wrapped key Base64, IV Base64, body) for a file; see :func:`encrypt_file`."""
        value = self.encrypt(data)
        ct = value.ciphertext
        body = "".join([_b64(ct[i : i + BLOCK_SIZE]) for i in range(0, len(ct), BLOCK_SIZE)])
        return _b64(value.wrapped_key), _b64(value.iv), body


def _aes_encrypt(plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    material = os.urandom(KEY_SIZE + IV_SIZE)
    one_time_key, iv = material[:KEY_SIZE], material[KEY_SIZE:]
    padder = sym_padding.PKCS7(BLOCK_SIZE * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(one_time_key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize(), one_time_key, iv


def _rsa_wrapper(key: RSAPublicKey) -> Callable[[bytes], bytes]:
    encrypt = key.encrypt

    def wrap(one_time_key: bytes) -> bytes:
        return encrypt(one_time_key, _PKCS1V15)

    return wrap


def _ec_wrapper(key: EllipticCurvePublicKey) -> Callable[[bytes], bytes]:
    curve = key.curve
    generate = ec.generate_private_key
    x962 = serialization.Encoding.X962
    uncompressed = serialization.PublicFormat.UncompressedPoint

    def wrap(one_time_key: bytes) -> bytes:
        ephemeral = generate(curve)
        z = ephemeral.exchange(_ECDH, key)
        v = ephemeral.public_key().public_bytes(x962, uncompressed)
        mac_key, keystream = _ecies_keys(v, z)
        c = _xor(one_time_key, keystream)
        return v + c + _ecies_tag(mac_key, c).finalize()

    return wrap


def encrypt_value(public_key: PublicKey, plaintext: bytes) -> EncryptedValue:
    """Encrypt one secret for ``public_key`` (use :class:`Encryptor` for many)."""
    return Encryptor(public_key).encrypt(plaintext)


def encrypt_file(public_key: PublicKey, data: bytes) -> tuple[str, str, str]:
    """Encrypt a file's content: (wrapped key Base64, IV Base64, body).

    The body is each 16-byte ciphertext block Base64-encoded on its own (24 characters),
    concatenated with no separator and no trailing newline, as JS7 expects.
    """
    return Encryptor(public_key).encrypt_file(data)


# ---------------------------------------------------------------------------------- decryption


def _unwrap_rsa(key: RSAPrivateKey, wrapped: bytes) -> bytes:
    expected = (key.key_size + 7) // 8
    if len(wrapped) != expected:
        raise WrongKeyError(
            f"the wrapped key is {len(wrapped)} bytes long, but a value for this "
            f"{describe_key(key)} key has {expected}",
            field=FIELD_WRAPPED_KEY,
        )
    try:
        one_time_key = key.decrypt(wrapped, _PKCS1V15)
    except ValueError:
        one_time_key = b""
    # With OpenSSL's implicit rejection a wrong key yields a pseudo-random message, not an error:
    # the length check (and the padding check after AES) catches it.
    if len(one_time_key) != KEY_SIZE:
        raise WrongKeyError(
            "the wrapped key does not open with this private key", field=FIELD_WRAPPED_KEY
        )
    return one_time_key


def _unwrap_ec(key: EllipticCurvePrivateKey, wrapped: bytes) -> bytes:
    curve = key.curve
    size = _field_size(curve)
    first = wrapped[0] if wrapped else -1
    if first == 0x04:
        v_len = 1 + 2 * size
    elif first in (0x02, 0x03):
        v_len = 1 + size
    else:
        raise WrongKeyError(
            "the wrapped key does not start with an EC point", field=FIELD_WRAPPED_KEY
        )
    expected = v_len + KEY_SIZE + _ECIES_TAG_SIZE
    if len(wrapped) != expected:
        raise WrongKeyError(
            f"the wrapped key is {len(wrapped)} bytes long, but a value for this "
            f"{describe_key(key)} key has {expected}",
            field=FIELD_WRAPPED_KEY,
        )
    v = wrapped[:v_len]
    c = wrapped[v_len : v_len + KEY_SIZE]
    tag = wrapped[v_len + KEY_SIZE :]
    try:
        ephemeral = EllipticCurvePublicKey.from_encoded_point(curve, v)
        z = key.exchange(_ECDH, ephemeral)
    except ValueError:
        raise WrongKeyError(
            f"the wrapped key's EC point is not on this key's curve ({describe_key(key)})",
            field=FIELD_WRAPPED_KEY,
        ) from None
    mac_key, keystream = _ecies_keys(v, z)
    try:
        _ecies_tag(mac_key, c).verify(tag)  # constant time
    except InvalidSignature:
        raise WrongKeyError(
            "the wrapped key's tag does not match this private key", field=FIELD_WRAPPED_KEY
        ) from None
    return _xor(c, keystream)


def _check_lengths(iv: bytes, ciphertext: bytes) -> None:
    if len(iv) != IV_SIZE:
        raise DamagedValueError(
            f"the IV is {len(iv)} bytes long; a JS7 value has a 16-byte IV "
            "(the value is damaged or truncated).",
            field=FIELD_IV,
        )
    if not ciphertext or len(ciphertext) % BLOCK_SIZE:
        raise DamagedValueError(
            f"the ciphertext is {len(ciphertext)} bytes long; it must be a positive multiple "
            "of 16 (the value is damaged or truncated).",
            field=FIELD_CIPHERTEXT,
        )


def _decrypt(private_key: PrivateKey, wrapped_key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    _check_lengths(iv, ciphertext)
    if isinstance(private_key, RSAPrivateKey):
        one_time_key = _unwrap_rsa(private_key, wrapped_key)
    elif isinstance(private_key, EllipticCurvePrivateKey):
        one_time_key = _unwrap_ec(private_key, wrapped_key)
    else:
        raise UnsupportedKeyError(_key_type_name(private_key))
    decryptor = Cipher(algorithms.AES(one_time_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise WrongKeyError(
            "the ciphertext's padding is wrong after decryption (wrong key, or a damaged "
            "wrapped key, IV or ciphertext)",
            field=FIELD_CIPHERTEXT,
        ) from None


def decrypt_value(private_key: PrivateKey, value: EncryptedValue) -> bytes:
    """Decrypt a value; all or nothing (raises a :class:`CryptoError` subclass)."""
    return _decrypt(private_key, value.wrapped_key, value.iv, value.ciphertext)


_FILE_BODY = re.compile(rb"(?:[A-Za-z0-9+/]{22}==)+")


def _parse_file_body(body: bytes) -> bytes:
    if _FILE_BODY.fullmatch(body) is None:
        hint = (
            "JS7's encrypted file body is 24-character Base64 blocks with no line breaks "
            "and no trailing newline."
        )
        if not body:
            raise NotAJs7ValueError(
                "the encrypted file is empty.", field=FIELD_CIPHERTEXT, hint=hint
            )
        if body.endswith(b"\n") and _FILE_BODY.fullmatch(body.rstrip(b"\r\n")):
            raise NotAJs7ValueError(
                "the encrypted file ends with a line break, which JS7 cannot decrypt either.",
                field=FIELD_CIPHERTEXT,
                hint="Remove the trailing newline (an editor or `echo` may have added it).",
            )
        offset = next(
            (
                i
                for i in range(0, len(body), FILE_CHUNK_SIZE)
                if _FILE_BODY.fullmatch(body[i : i + FILE_CHUNK_SIZE]) is None
            ),
            0,
        )
        raise NotAJs7ValueError(
            f"the encrypted file is not in JS7's format (first bad block at byte {offset}).",
            field=FIELD_CIPHERTEXT,
            hint=hint,
        )
    a2b = binascii.a2b_base64
    return b"".join(
        [a2b(body[i : i + FILE_CHUNK_SIZE]) for i in range(0, len(body), FILE_CHUNK_SIZE)]
    )


def decrypt_file(private_key: PrivateKey, wrapped_key_b64: str, iv_b64: str, body: bytes) -> bytes:
    """Decrypt an encrypted file's body with its wrapped key and IV (Base64 text)."""
    wrapped_key = _b64_field(wrapped_key_b64.strip(), FIELD_WRAPPED_KEY)
    iv = _b64_field(iv_b64.strip(), FIELD_IV)
    if not wrapped_key:
        raise NotAJs7ValueError("the wrapped key is empty.", field=FIELD_WRAPPED_KEY)
    return _decrypt(private_key, wrapped_key, iv, _parse_file_body(body))


def key_matches(private_key: PrivateKey, public_key: PublicKey) -> bool:
    """Whether the private key opens what is encrypted for the public key (a random probe)."""
    probe = os.urandom(BLOCK_SIZE)
    try:
        value = Encryptor(public_key).encrypt(probe)
        return _decrypt(private_key, value.wrapped_key, value.iv, value.ciphertext) == probe
    except CryptoError:
        return False
