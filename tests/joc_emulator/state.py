"""Configuration, fault descriptions and the inspectable state of the JOC emulator.

Nothing here speaks HTTP; :mod:`tests.joc_emulator.server` does. Everything in
:class:`EmulatorState` is guarded by ``state.lock`` (a re-entrant lock): the helper methods take it
themselves; a test that mutates the dictionaries directly must hold it and call
``state.changed()`` afterwards so that a state file (``--state``) is rewritten.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypedDict, cast

API_PREFIX = "/joc/api/"

PERM_CERTIFICATES_VIEW = "sos:products:joc:administration:certificates:view"
PERM_CERTIFICATES_MANAGE = "sos:products:joc:administration:certificates:manage"
PERM_INVENTORY_VIEW = "sos:products:joc:inventory:view"
#: A granted permission covers itself and everything below it (``a:b`` grants ``a:b:c``).
ALL_PERMISSIONS: tuple[str, ...] = ("sos:products",)
VIEW_PERMISSIONS: tuple[str, ...] = (PERM_CERTIFICATES_VIEW, PERM_INVENTORY_VIEW)


def has_permission(granted: Iterable[str], required: str) -> bool:
    """JOC's permission tree: ``sos:products:joc`` grants ``sos:products:joc:inventory:view``."""
    return any(required == g or required.startswith(g + ":") for g in granted)


def timestamp(when: datetime | None = None) -> str:
    """JOC's timestamp format, e.g. ``2024-07-01T12:00:00.000+00:00``."""
    return (when or datetime.now(UTC)).isoformat(timespec="milliseconds")


def parse_version(version: str) -> tuple[int, ...]:
    """``"2.8.1"`` -> ``(2, 8, 1)``; trailing non-digits (``-SNAPSHOT``) are ignored."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def normalize_endpoint(path: str) -> str:
    """``encipherment/certificate`` or ``/joc/api/encipherment/certificate`` -> the full path."""
    if path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/"):
        return path
    return API_PREFIX + path.lstrip("/")


class SecurityLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(init=False)
class Account:
    """A JOC account: its password (never shown in reprs) and its granted permissions."""

    password: str = field(repr=False)
    permissions: frozenset[str]

    def __init__(self, password: str, permissions: Iterable[str] = ALL_PERMISSIONS) -> None:
        self.password = password
        self.permissions = frozenset(permissions)


def _default_accounts() -> dict[str, Account]:
    return {"root": Account("root")}


def _default_approvers() -> list[dict[str, str]]:
    return [{"accountName": "approver", "firstName": "Ada", "lastName": "Approver"}]


@dataclass
class EmulatorConfig:
    """Per-test settings; the running emulator reads them on every request.

    - ``accounts``: ``{name: Account(password, permissions)}``; default ``root``/``root`` with
      every permission.
    - ``version``: what ``GET /joc/api/version`` reports. Below 2.7.1 the ``encipherment/*``
      endpoints answer 404; below 2.8 assignment add/remove need only the view permission and
      ``approval_required`` is ignored.
    - ``security_level``: at LOW and MEDIUM a store deploys the Job Resource in the background
      after ``deploy_delay`` seconds; at HIGH nothing is deployed.
    - ``deploy_fails_without_session``: JOC's quirk that a deployment fails silently when the
      session that stored the certificate has ended (logout, expiry) before it runs.
    - ``force_comments``: store and import without an audit-log comment answer 420 ``JOC-300``.
    - ``idle_timeout``: seconds a session may stay unused before it expires (440).
    - ``approval_required``: endpoints (``"encipherment/certificate/store"`` or the full path)
      that answer 433 after the permission check (JOC 2.8+).
    """

    accounts: dict[str, Account] = field(default_factory=_default_accounts)
    version: str = "2.8.1"
    security_level: SecurityLevel = SecurityLevel.MEDIUM
    force_comments: bool = False
    idle_timeout: float = 1800.0
    deploy_delay: float = 0.2
    deploy_fails_without_session: bool = True
    approval_required: set[str] = field(default_factory=set)
    approvers: list[dict[str, str]] = field(default_factory=_default_approvers)

    def version_tuple(self) -> tuple[int, ...]:
        return parse_version(self.version)

    def needs_approval(self, path: str) -> bool:
        if self.version_tuple() < (2, 8):
            return False
        return any(normalize_endpoint(p) == path for p in self.approval_required)


class FaultKind(StrEnum):
    STATUS = "status"  # answer with ``status`` (and ``body``) instead of processing
    DROP = "drop"  # close the connection without answering
    DELAY = "delay"  # wait ``delay`` seconds, then process normally


@dataclass
class Fault:
    """One injected fault; see :meth:`tests.joc_emulator.server.JocEmulator.add_fault`.

    It matches calls whose path equals ``path`` (or starts with it when ``prefix``), counts them
    (``seen``) and fires on the ``nth`` one, or on every one when ``every``. A fault that fired is
    removed unless ``every``. With ``after`` the call is processed first (state changes happen)
    and the fault then replaces, drops or delays the answer.
    """

    path: str
    kind: FaultKind
    status: int = 500
    body: bytes | str | dict[str, Any] | None = None
    delay: float = 0.0
    nth: int = 1
    every: bool = False
    prefix: bool = False
    after: bool = False
    seen: int = 0
    fired: int = 0

    def matches(self, path: str) -> bool:
        if self.prefix:
            return path.startswith(self.path)
        return path == self.path


@dataclass(frozen=True)
class Call:
    """One request as the emulator saw it. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    status: int | None
    account: str | None
    timestamp: datetime
    connection: int  # sequence number of the TCP connection that carried the call
    fault: str | None = None

    @property
    def endpoint(self) -> str:
        """The path below ``/joc/api/`` (``encipherment/certificate/store``)."""
        return self.path.removeprefix(API_PREFIX)


@dataclass
class Session:
    token: str = field(repr=False)
    account: str
    created: float  # time.monotonic()
    last_used: float  # time.monotonic()
    via: str  # "basic" or "certificate"


class CertificateRecord(TypedDict):
    certificate: str
    privateKeyPath: str | None


class JobResourceRecord(TypedDict):
    folder: str
    deployed: bool
    arguments: dict[str, str]
    env: dict[str, str]


class AuditEntry(TypedDict):
    id: int
    created: str
    account: str
    request: str
    certAlias: str
    comment: str | None
    timeSpent: int | None
    ticketLink: str | None


class DeploymentRecord(TypedDict):
    name: str
    folder: str
    ok: bool
    reason: str
    at: str


STATE_FORMAT = 1


class EmulatorState:
    """Everything the emulator remembers; thread-safe through ``lock``.

    Persisted to ``path`` (when given) after every change: certificates, assignments, Job
    Resources, the audit log and the deployment history. Sessions and the call log live in memory
    only, as they do in JOC (a restarted JOC forgets its sessions).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.path = path
        self.certificates: dict[str, CertificateRecord] = {}
        self.assignments: dict[str, set[str]] = {}
        self.job_resources: dict[str, JobResourceRecord] = {}
        self.audit_log: list[AuditEntry] = []
        self.deployments: list[DeploymentRecord] = []
        self.sessions: dict[str, Session] = {}
        self.calls: list[Call] = []
        if path is not None and path.exists():
            self.load()

    # -- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "format": STATE_FORMAT,
                "certificates": copy.deepcopy(self.certificates),
                "assignments": {a: sorted(ids) for a, ids in self.assignments.items()},
                "jobResources": copy.deepcopy(self.job_resources),
                "auditLog": copy.deepcopy(self.audit_log),
                "deployments": copy.deepcopy(self.deployments),
            }

    def load(self) -> None:
        assert self.path is not None
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"{self.path}: not a JOC emulator state file (format {STATE_FORMAT})")
        with self.lock:
            self.certificates = cast(dict[str, CertificateRecord], data["certificates"])
            self.assignments = {a: set(ids) for a, ids in data["assignments"].items()}
            self.job_resources = cast(dict[str, JobResourceRecord], data["jobResources"])
            self.audit_log = cast(list[AuditEntry], data["auditLog"])
            self.deployments = cast(list[DeploymentRecord], data["deployments"])

    def save(self) -> None:
        """Write the state file atomically (no-op without a path)."""
        if self.path is None:
            return
        text = json.dumps(self.to_json(), indent=1, sort_keys=True, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".joc-emulator-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def changed(self) -> None:
        """Call after a change (with the lock held or not): rewrites the state file."""
        with self.lock:
            self.save()

    # -- helpers for tests -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the persistent part plus the session accounts, for assertions."""
        with self.lock:
            data = self.to_json()
            data["sessions"] = sorted(s.account for s in self.sessions.values())
            return data

    def put_certificate(
        self,
        alias: str,
        certificate: str,
        private_key_path: str | None = None,
        job_resource_folder: str | None = "/Encryption",
        *,
        deployed: bool = True,
    ) -> None:
        """Seed an entry as if JOC had stored it earlier (no audit entry, no deployment)."""
        with self.lock:
            self.certificates[alias] = {
                "certificate": certificate,
                "privateKeyPath": private_key_path,
            }
            if job_resource_folder is not None:
                self.job_resources[alias] = job_resource_record(
                    job_resource_folder, certificate, private_key_path, deployed=deployed
                )
            self.changed()

    def assign(self, alias: str, *agent_ids: str) -> None:
        with self.lock:
            self.assignments.setdefault(alias, set()).update(agent_ids)
            self.changed()

    def clear(self) -> None:
        """Forget everything, sessions and calls included."""
        with self.lock:
            self.certificates.clear()
            self.assignments.clear()
            self.job_resources.clear()
            self.audit_log.clear()
            self.deployments.clear()
            self.sessions.clear()
            self.calls.clear()
            self.changed()


def job_resource_record(
    folder: str, certificate: str, private_key_path: str | None, *, deployed: bool = False
) -> JobResourceRecord:
    """The Job Resource JOC writes for a certificate alias."""
    arguments = {"encipherment_certificate": certificate}
    env = {"ENCIPHERMENT_CERTIFICATE": "$encipherment_certificate"}
    if private_key_path is not None:
        arguments["encipherment_private_key_path"] = private_key_path
        env["ENCIPHERMENT_PRIVATE_KEY_PATH"] = "$encipherment_private_key_path"
    return {"folder": folder, "deployed": deployed, "arguments": arguments, "env": env}
