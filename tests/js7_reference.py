"""An independent implementation of the JS7 encrypted-value format, for cross-checking.

Written from spec/js7-encryption.md only; it shares no code with ``js7certctl.envelope`` and is
deliberately built differently: textbook RSA with hand-made PKCS#1 v1.5 padding, CBC chaining by
hand over single AES blocks, hand-made PKCS#7 padding, a KDF2 loop over hashlib and the ``hmac``
module. It is test code: slow, and with error handling only as far as the tests need.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_BLOCK = 16


class RefDecryptError(Exception):
    """The reference implementation cannot decrypt the input."""


# ----------------------------------------------------------------------------- small helpers


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    """Standard alphabet, no line breaks, '=' padding optional (as the spec says JS7 does)."""
    missing = -len(text) % 4
    return base64.b64decode(text + "=" * missing, validate=True)


def _pkcs7_pad(data: bytes) -> bytes:
    count = AES_BLOCK - len(data) % AES_BLOCK
    return data + bytes([count]) * count


def _pkcs7_unpad(data: bytes) -> bytes:
    if not data or len(data) % AES_BLOCK:
        raise RefDecryptError("ciphertext length")
    count = data[-1]
    if not 1 <= count <= AES_BLOCK or data[-count:] != bytes([count]) * count:
        raise RefDecryptError("padding")
    return data[:-count]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _aes_block(key: bytes, block: bytes, *, decrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305  (one block at a time, CBC by hand)
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(block) + op.finalize()


def _cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padded = _pkcs7_pad(plaintext)
    previous = iv
    out = []
    for start in range(0, len(padded), AES_BLOCK):
        previous = _aes_block(key, _xor(padded[start : start + AES_BLOCK], previous), decrypt=False)
        out.append(previous)
    return b"".join(out)


def _cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if len(iv) != AES_BLOCK or not ciphertext or len(ciphertext) % AES_BLOCK:
        raise RefDecryptError("IV or ciphertext length")
    previous = iv
    out = []
    for start in range(0, len(ciphertext), AES_BLOCK):
        block = ciphertext[start : start + AES_BLOCK]
        out.append(_xor(_aes_block(key, block, decrypt=True), previous))
        previous = block
    return _pkcs7_unpad(b"".join(out))


# --------------------------------------------------------------------- RSA, PKCS#1 v1.5 by hand


def _rsa_wrap(public_key: rsa.RSAPublicKey, message: bytes) -> bytes:
    numbers = public_key.public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    ps = bytearray()
    while len(ps) < k - 3 - len(message):
        ps.extend(b for b in os.urandom(k) if b != 0)
    em = b"\x00\x02" + bytes(ps[: k - 3 - len(message)]) + b"\x00" + message
    return pow(int.from_bytes(em, "big"), numbers.e, numbers.n).to_bytes(k, "big")


def _rsa_unwrap(private_key: rsa.RSAPrivateKey, wrapped: bytes) -> bytes:
    numbers = private_key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    if len(wrapped) != k:
        raise RefDecryptError("wrapped key length")
    c = int.from_bytes(wrapped, "big")
    if c >= n:
        raise RefDecryptError("wrapped key out of range")
    # CRT: m = m2 + q * (qinv * (m1 - m2) mod p)
    m1 = pow(c, numbers.dmp1, numbers.p)
    m2 = pow(c, numbers.dmq1, numbers.q)
    m = m2 + numbers.q * ((numbers.iqmp * (m1 - m2)) % numbers.p)
    em = m.to_bytes(k, "big")
    if em[0] != 0 or em[1] != 2:
        raise RefDecryptError("RSA padding")
    separator = em.find(b"\x00", 2)
    if separator < 10:  # at least eight non-zero padding bytes
        raise RefDecryptError("RSA padding")
    return em[separator + 1 :]


# --------------------------------------------------------- EC, BouncyCastle ECIES ("XOR mode")

ECIES_MAC_KEY = 32
ECIES_TAG = 20


def _field_bytes(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def _kdf2_sha1(secret: bytes, length: int) -> bytes:
    output = b""
    counter = 1
    while len(output) < length:
        output += hashlib.sha1(secret + counter.to_bytes(4, "big")).digest()  # noqa: S324  (the format's KDF)
        counter += 1
    return output[:length]


def _encode_point(numbers: ec.EllipticCurvePublicNumbers, size: int, *, compressed: bool) -> bytes:
    x = numbers.x.to_bytes(size, "big")
    if compressed:
        return bytes([2 + (numbers.y & 1)]) + x
    return b"\x04" + x + numbers.y.to_bytes(size, "big")


def _ecies_wrap(
    public_key: ec.EllipticCurvePublicKey, message: bytes, *, compressed: bool
) -> bytes:
    curve = public_key.curve
    ephemeral = ec.generate_private_key(curve)
    size = _field_bytes(curve)
    v = _encode_point(ephemeral.public_key().public_numbers(), size, compressed=compressed)
    z = ephemeral.exchange(ec.ECDH(), public_key).rjust(size, b"\x00")
    k = _kdf2_sha1(v + z, ECIES_MAC_KEY + len(message))
    c = _xor(message, k[ECIES_MAC_KEY:])
    tag = hmac.new(k[:ECIES_MAC_KEY], c + bytes(8), "sha1").digest()
    return v + c + tag


def _ecies_unwrap(private_key: ec.EllipticCurvePrivateKey, wrapped: bytes) -> bytes:
    curve = private_key.curve
    size = _field_bytes(curve)
    if wrapped[:1] == b"\x04":
        v = wrapped[: 1 + 2 * size]
        x = int.from_bytes(v[1 : 1 + size], "big")
        y = int.from_bytes(v[1 + size :], "big")
        ephemeral = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    else:
        v = wrapped[: 1 + size]
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(curve, v)
    rest = wrapped[len(v) :]
    c, tag = rest[:-ECIES_TAG], rest[-ECIES_TAG:]
    z = private_key.exchange(ec.ECDH(), ephemeral).rjust(size, b"\x00")
    k = _kdf2_sha1(v + z, ECIES_MAC_KEY + len(c))
    expected = hmac.new(k[:ECIES_MAC_KEY], c + bytes(8), "sha1").digest()
    if not hmac.compare_digest(expected, tag):
        raise RefDecryptError("ECIES tag")
    return _xor(c, k[ECIES_MAC_KEY:])


# ----------------------------------------------------------------------------------- the API

RefPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
RefPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _wrap(public_key: RefPublicKey, one_time_key: bytes, *, compressed: bool) -> bytes:
    if isinstance(public_key, rsa.RSAPublicKey):
        return _rsa_wrap(public_key, one_time_key)
    return _ecies_wrap(public_key, one_time_key, compressed=compressed)


def _unwrap(private_key: RefPrivateKey, wrapped: bytes) -> bytes:
    if isinstance(private_key, rsa.RSAPrivateKey):
        one_time_key = _rsa_unwrap(private_key, wrapped)
    else:
        one_time_key = _ecies_unwrap(private_key, wrapped)
    if len(one_time_key) != 16:
        raise RefDecryptError("one-time key length")
    return one_time_key


def encrypt_parts(
    public_key: RefPublicKey, secret: bytes, *, compressed: bool = False
) -> tuple[bytes, bytes, bytes, bytes]:
    """(wrapped key, IV, ciphertext, one-time key), for tests that must know the one-time key."""
    one_time_key = os.urandom(16)
    iv = os.urandom(16)
    ciphertext = _cbc_encrypt(one_time_key, iv, secret)
    return _wrap(public_key, one_time_key, compressed=compressed), iv, ciphertext, one_time_key


def encrypt(public_key: RefPublicKey, secret: bytes, *, compressed: bool = False) -> str:
    """``enc:<wrapped key> <IV> <ciphertext>``."""
    wrapped, iv, ciphertext, _ = encrypt_parts(public_key, secret, compressed=compressed)
    return "enc:" + " ".join(_b64encode(part) for part in (wrapped, iv, ciphertext))


def decrypt(private_key: RefPrivateKey, value: str) -> bytes:
    text = value.strip()
    if text.startswith("enc:"):
        text = text[4:]
    fields = text.split(" ")
    if len(fields) < 3:
        raise RefDecryptError("fewer than three fields")
    wrapped, iv, ciphertext = (_b64decode(f) for f in fields[:3])
    return _cbc_decrypt(_unwrap(private_key, wrapped), iv, ciphertext)


def encrypt_file(public_key: RefPublicKey, data: bytes) -> tuple[str, str, str]:
    """(wrapped key Base64, IV Base64, body): each 16-byte block Base64-encoded on its own."""
    wrapped, iv, ciphertext, _ = encrypt_parts(public_key, data)
    body = ""
    for start in range(0, len(ciphertext), AES_BLOCK):
        body += _b64encode(ciphertext[start : start + AES_BLOCK])
    return _b64encode(wrapped), _b64encode(iv), body


def decrypt_file(private_key: RefPrivateKey, wrapped_b64: str, iv_b64: str, body: str) -> bytes:
    if len(body) % 24:
        raise RefDecryptError("body length")
    blocks = [_b64decode(body[start : start + 24]) for start in range(0, len(body), 24)]
    if any(len(block) != AES_BLOCK for block in blocks):
        raise RefDecryptError("body block")
    one_time_key = _unwrap(private_key, _b64decode(wrapped_b64))
    return _cbc_decrypt(one_time_key, _b64decode(iv_b64), b"".join(blocks))
