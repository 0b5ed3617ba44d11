"""The contract every live keystore backend meets: JOC's semantics (spec/joc-api.md).

Reuse it by subclassing :class:`KeystoreContract` in a ``test_*.py`` module and providing two
fixtures there:

- ``keystore``: a fresh, empty backend (a ``Keystore``), closed after the test;
- ``expected_identity``: the ``TargetIdentity`` that backend must report.

The class name does not start with ``Test``, so pytest collects it only through subclasses.
Certificates are small real ones made with ``cryptography`` (:func:`make_cert`), cached per process.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from js7certctl.errors import BackendError
from js7certctl.keystore.base import Keystore
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity

AUDIT = AuditLog(comment="js7certctl contract test", ticket_link=None, time_spent=1)
FOLDER = "/Encryption"


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA-2048 key for every certificate in the test run (key generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def make_cert(index: int = 0) -> str:
    """The PEM text of a distinct self-signed certificate (CN ``contract-<index>``), cached."""
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"contract-{index}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1000 + index)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


@functools.cache
def make_public_key() -> str:
    """The PEM text of the shared key's public half (a ``PUBLIC KEY`` block)."""
    return (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _entry(ks: Keystore, alias: str) -> LiveEntry:
    matches = [entry for entry in ks.list_entries() if entry.alias == alias]
    assert len(matches) == 1, f"expected exactly one entry {alias!r}, got {matches!r}"
    return matches[0]


class KeystoreContract:
    """Backend-independent tests; subclasses provide ``keystore`` and ``expected_identity``."""

    def test_implements_the_protocol(self, keystore: Keystore) -> None:
        assert isinstance(keystore, Keystore)

    def test_identity(self, keystore: Keystore, expected_identity: TargetIdentity) -> None:
        identity = keystore.identity
        assert isinstance(identity, TargetIdentity)
        assert identity == expected_identity
        assert identity.name
        assert identity.backend
        assert identity.location

    def test_empty_keystore_lists_nothing(self, keystore: Keystore) -> None:
        assert keystore.list_entries() == []

    def test_store_then_list(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), "/var/sos/agent-a.key", FOLDER, AUDIT)

        assert keystore.list_entries() == [
            LiveEntry(
                alias="agent-a",
                certificate=make_cert(0),
                private_key_path="/var/sos/agent-a.key",
                job_resource_folder=FOLDER,
                agents=(),
            )
        ]

    def test_store_is_an_upsert_replacing_certificate_and_path(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), "/old/agent-a.key", FOLDER, AUDIT)
        keystore.store("agent-a", make_cert(1), "/new/agent-a.key", FOLDER, AUDIT)

        entries = keystore.list_entries()
        assert [e.alias for e in entries] == ["agent-a"]
        assert entries[0].certificate == make_cert(1)
        assert entries[0].private_key_path == "/new/agent-a.key"

    def test_store_without_private_key_path_clears_it(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), "/var/sos/agent-a.key", FOLDER, AUDIT)
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

        assert _entry(keystore, "agent-a").private_key_path is None

    def test_store_under_a_new_alias_adds_an_entry_rather_than_renaming(
        self, keystore: Keystore
    ) -> None:
        keystore.store("old-name", make_cert(0), None, FOLDER, AUDIT)
        keystore.store("new-name", make_cert(0), None, FOLDER, AUDIT)

        assert [e.alias for e in keystore.list_entries()] == ["new-name", "old-name"]

    def test_store_leaves_other_aliases_alone(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), "/a.key", FOLDER, AUDIT)
        keystore.add_assignment("agent-a", "agent-1")
        before = _entry(keystore, "agent-a")

        keystore.store("agent-b", make_cert(1), "/b.key", "/Other", AUDIT)

        assert _entry(keystore, "agent-a") == before

    def test_list_is_sorted_by_alias_and_aliases_are_case_sensitive(
        self, keystore: Keystore
    ) -> None:
        aliases = ["b", "Agent", "a.b", "agent", "a-1", "Z", "a"]
        for index, alias in enumerate(aliases):
            keystore.store(alias, make_cert(index % 3), None, FOLDER, AUDIT)

        assert [e.alias for e in keystore.list_entries()] == sorted(aliases)

    @pytest.mark.parametrize(
        "variant",
        [
            "crlf",
            "trailing-spaces",
            "no-final-newline",
            "surrounding-text",
            "tabs-and-blank-lines",
            "public-key",
        ],
    )
    def test_certificate_text_comes_back_byte_for_byte(
        self, keystore: Keystore, variant: str
    ) -> None:
        pem = make_cert(0)
        text = {
            "crlf": pem.replace("\n", "\r\n"),
            "trailing-spaces": pem.replace("\n", "  \n"),
            "no-final-newline": pem.rstrip("\n"),
            "surrounding-text": "\n\n# Zertifikat für Agent \u00e4\u00f6\u00fc\n" + pem + "\n \t\n",
            "tabs-and-blank-lines": pem.replace("\n", "\n\t\n", 3),
            "public-key": make_public_key(),
        }[variant]

        keystore.store("agent-a", text, None, FOLDER, AUDIT)

        stored = _entry(keystore, "agent-a").certificate
        assert stored == text
        assert stored.encode("utf-8") == text.encode("utf-8")

    @pytest.mark.parametrize(
        "text",
        [
            "not a certificate",
            "-----BEGIN CERTIFICATE-----\nMIIB\n",  # no END line
            "{cert}{cert}",  # two certificates
            "{cert}{public_key}",  # a certificate followed by a public key
        ],
        ids=["no-block", "unterminated", "two-certificates", "certificate-and-public-key"],
    )
    def test_store_refuses_anything_but_one_certificate_or_public_key_block(
        self, keystore: Keystore, text: str
    ) -> None:
        keystore.store("agent-a", make_cert(0), "/a.key", FOLDER, AUDIT)
        before = keystore.list_entries()
        bad = text.format(cert=make_cert(1), public_key=make_public_key())

        with pytest.raises(BackendError):
            keystore.store("agent-a", bad, None, "/Other", AUDIT)
        with pytest.raises(BackendError):
            keystore.store("agent-b", bad, None, FOLDER, AUDIT)

        assert keystore.list_entries() == before

    def test_delete_removes_the_entry(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
        keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)

        keystore.delete("agent-a", AUDIT)

        assert [e.alias for e in keystore.list_entries()] == ["agent-b"]

    def test_delete_is_idempotent_and_accepts_unknown_aliases(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

        keystore.delete("never-stored", AUDIT)
        keystore.delete("agent-a", AUDIT)
        keystore.delete("agent-a", AUDIT)

        assert keystore.list_entries() == []

    def test_delete_drops_assignments_and_a_recreated_alias_has_none(
        self, keystore: Keystore
    ) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
        keystore.add_assignment("agent-a", "agent-1")
        keystore.add_assignment("agent-a", "agent-2")
        keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)
        keystore.add_assignment("agent-b", "agent-1")

        keystore.delete("agent-a", AUDIT)
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

        assert _entry(keystore, "agent-a").agents == ()
        assert _entry(keystore, "agent-b").agents == ("agent-1",)

    def test_assignments_are_listed_sorted(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

        for agent in ("primary-b", "Primary-c", "primary-a"):
            keystore.add_assignment("agent-a", agent)

        assert _entry(keystore, "agent-a").agents == ("Primary-c", "primary-a", "primary-b")

    def test_add_and_remove_assignment_are_idempotent(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

        keystore.add_assignment("agent-a", "agent-1")
        keystore.add_assignment("agent-a", "agent-1")
        assert _entry(keystore, "agent-a").agents == ("agent-1",)

        keystore.remove_assignment("agent-a", "agent-1")
        keystore.remove_assignment("agent-a", "agent-1")
        keystore.remove_assignment("agent-a", "never-assigned")
        assert _entry(keystore, "agent-a").agents == ()

    def test_assignments_for_unknown_aliases_are_accepted_and_not_listed(
        self, keystore: Keystore
    ) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

        keystore.add_assignment("ghost", "agent-1")
        keystore.remove_assignment("ghost", "agent-2")

        assert [e.alias for e in keystore.list_entries()] == ["agent-a"]
        assert _entry(keystore, "agent-a").agents == ()

    def test_store_keeps_existing_assignments(self, keystore: Keystore) -> None:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
        keystore.add_assignment("agent-a", "agent-1")

        keystore.store("agent-a", make_cert(1), "/a.key", "/Other", AUDIT)

        assert _entry(keystore, "agent-a").agents == ("agent-1",)

    def test_job_resource_folder_is_reported_and_moved_by_a_second_store(
        self, keystore: Keystore
    ) -> None:
        keystore.store("agent-a", make_cert(0), None, "/Encryption", AUDIT)
        keystore.store("agent-b", make_cert(1), None, "/Encryption", AUDIT)
        assert _entry(keystore, "agent-a").job_resource_folder == "/Encryption"

        keystore.store("agent-a", make_cert(0), None, "/Security/Certificates", AUDIT)

        assert _entry(keystore, "agent-a").job_resource_folder == "/Security/Certificates"
        assert _entry(keystore, "agent-b").job_resource_folder == "/Encryption"

    def test_writes_inside_a_writer_session(self, keystore: Keystore) -> None:
        with keystore.writer(AUDIT):
            keystore.store("agent-a", make_cert(0), "/a.key", FOLDER, AUDIT)
            keystore.add_assignment("agent-a", "agent-1")
            keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)
            keystore.delete("agent-b", AUDIT)

        assert keystore.list_entries() == [
            LiveEntry("agent-a", make_cert(0), "/a.key", FOLDER, ("agent-1",))
        ]

    def test_close_is_idempotent(self, keystore: Keystore) -> None:
        keystore.list_entries()
        keystore.close()
        keystore.close()
