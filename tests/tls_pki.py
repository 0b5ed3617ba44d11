"""A throwaway PKI for TLS tests against the JOC emulator: a CA, a server certificate for
127.0.0.1 and a client certificate whose CN is the emulator's ``root`` account (EC P-256 keys,
quick to make)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_NAME = "js7certctl test CA"


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (what a target's caBundle names)
    server_cert: Path  # for 127.0.0.1
    server_key: Path
    client_cert: Path  # CN root
    client_key: Path
    clients: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # CN -> (cert, key)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256())


def make_pki(folder: Path, clients: Sequence[str] = ("root",)) -> Pki:
    """Write the CA, the server certificate and one client certificate per name (CN) with their
    keys into ``folder``; the first client is ``client_cert``/``client_key``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(CA_NAME, ca_key, ca_key, ca=True)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    made: dict[str, tuple[Path, Path]] = {}
    for name in ("server", *clients):
        key = ec.generate_private_key(ec.SECP256R1())
        cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
        cert_path.write_bytes(
            _issue(name, key, ca_key, server=name == "server").public_bytes(
                serialization.Encoding.PEM
            )
        )
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        made[name] = (cert_path, key_path)
    server = made.pop("server")
    first = made[clients[0]]
    return Pki(folder / "ca.pem", *server, *first, clients=made)
