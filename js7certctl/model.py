"""Frozen value types shared by every layer: problems, certificate facts, entries, changes.

Nothing here does I/O. The types are the contract between the manifest loader, the keystore
backends, the diff, the plan file and the renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a file, at a 1-based line and column, with a stable rule id."""

    path: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        return (
            f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message} [{self.rule}]"
        )

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.rule)


@dataclass(frozen=True, slots=True)
class CertFacts:
    """What a reviewer needs to know about a certificate or public key, never its Base64."""

    kind: str  # "certificate" or "public-key"
    key_type: str  # "RSA", "EC", "Ed25519", "Ed448", "X25519", "X448", "DSA", ...
    key_size: int  # bits
    fingerprint: str  # SHA-256 of the DER (certificate, or SubjectPublicKeyInfo), lower-case hex
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None  # hex
    curve: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    signature_hash: str | None = None  # "sha256", "sha1", ... (None for a bare public key)

    @property
    def is_certificate(self) -> bool:
        return self.kind == "certificate"

    @property
    def key_description(self) -> str:
        if self.key_type == "EC" and self.curve:
            return f"EC {self.curve}"
        if self.key_type in ("RSA", "DSA"):
            return f"{self.key_type} {self.key_size}"
        return self.key_type

    def days_left(self, now: datetime | None = None) -> int | None:
        if self.not_after is None:
            return None
        now = now or datetime.now(UTC)
        return int((self.not_after - now).total_seconds() // 86400)

    def short_fingerprint(self) -> str:
        return "SHA256:" + self.fingerprint[:16]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a desired entry was declared: repository-relative path and 1-based positions."""

    path: str
    document: int = 0  # 0-based index of the YAML document in the file
    line: int = 1
    column: int = 1
    # line/column of the certificate (inline `certificate` or `certificateFile`) for health findings
    cert_line: int = 1
    cert_column: int = 1
    cert_file: str | None = None  # repository-relative path of certificateFile, if used


@dataclass(frozen=True, slots=True)
class DesiredCert:
    """One alias as the manifests want it."""

    alias: str
    certificate: str  # exactly one PEM block (CERTIFICATE or PUBLIC KEY), normalised, ends in \n
    private_key_path: str | None
    job_resource_folder: str
    agents: tuple[str, ...]  # sorted, unique
    facts: CertFacts
    origin: Origin = field(default_factory=lambda: Origin(path=""))
    labels: tuple[tuple[str, str], ...] = ()
    previous_aliases: tuple[str, ...] = ()
    # False when the manifest has no `agents` key: the alias's assignments are then not managed
    # (never compared, never changed), except that a rename carries them over.
    agents_managed: bool = True

    @property
    def fingerprint(self) -> str:
        return self.facts.fingerprint


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """One alias as the live keystore holds it.

    ``certificate`` is the stored text byte for byte; it is never echoed (it may hold garbage or
    even a private key). ``job_resource_folder`` and ``agents`` are ``None`` when the backend cannot
    tell; the diff then does not compare them.
    """

    alias: str
    certificate: str
    private_key_path: str | None
    job_resource_folder: str | None
    agents: tuple[str, ...] | None


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RENAME = "rename"  # store the new alias, carry the assignments over, delete the old one
    NOOP = "no-op"


# Field names as they appear in plans (the manifest's spelling).
FIELD_CERTIFICATE = "certificate"
FIELD_PRIVATE_KEY_PATH = "privateKeyPath"
FIELD_JOB_RESOURCE_FOLDER = "jobResourceFolder"
FIELD_AGENTS = "agents"
FIELDS = (FIELD_CERTIFICATE, FIELD_PRIVATE_KEY_PATH, FIELD_JOB_RESOURCE_FOLDER, FIELD_AGENTS)


@dataclass(frozen=True, slots=True)
class Change:
    """What apply will do to one alias."""

    alias: str
    action: Action
    before: LiveEntry | None
    after: DesiredCert | None
    fields: tuple[str, ...] = ()  # changed fields (FIELDS), for updates
    agents_add: tuple[str, ...] = ()
    agents_remove: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    before_facts: CertFacts | None = None  # facts of the live certificate (never its text)
    renamed_from: str | None = None  # for renames: the old alias (``before`` is its entry)

    @property
    def needs_store(self) -> bool:
        """Create, or an update of a field that only a store can change."""
        if self.action in (Action.CREATE, Action.RENAME):
            return True
        if self.action is not Action.UPDATE:
            return False
        return any(f != FIELD_AGENTS for f in self.fields)


@dataclass(frozen=True, slots=True)
class AuditLog:
    """JOC audit-log fields recorded with each write."""

    comment: str | None = None
    ticket_link: str | None = None
    time_spent: int | None = None


@dataclass(frozen=True, slots=True)
class TargetIdentity:
    """Which live keystore: the target's name, its backend and where it is (URL or file)."""

    name: str
    backend: str
    location: str


@dataclass(frozen=True, slots=True)
class ManifestChange:
    """What a pull request itself changes in the manifests (between --base and --ref)."""

    alias: str
    kind: str  # "added", "edited", "removed"
    fields: tuple[str, ...] = ()  # for "edited": certificate, privateKeyPath, ..., labels
    path: str = ""  # the manifest's path (at the head; at the base for "removed")
