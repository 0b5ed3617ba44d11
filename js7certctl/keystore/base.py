"""The protocol every live keystore backend implements (the embedded SQLite store, JOC Cockpit).

Semantics are JOC's (spec/joc-api.md): ``store`` is an upsert keyed by alias that replaces the
certificate, the private key path (``None`` clears it) and the Job Resource folder; ``delete`` is
idempotent, drops the alias's Agent assignments and leaves its Job Resource behind; assignment
calls are idempotent and check neither the alias nor the Agent.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from js7certctl.errors import BackendError
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity

AUDIT_TEXT_MAX = 255  # JOC's limit for the audit-log comment and ticket link


def check_audit(audit: AuditLog) -> None:
    """JOC's audit-log limits, checked before a write (JOC would answer 420): texts up to 255
    characters without '<' or '>', time spent 0 or more. Both backends enforce them alike."""
    for name, value in (("comment", audit.comment), ("ticket link", audit.ticket_link)):
        if value is None:
            continue
        if len(value) > AUDIT_TEXT_MAX:
            raise BackendError(
                f"the audit-log {name} is longer than {AUDIT_TEXT_MAX} characters, which JOC "
                "refuses; nothing was changed.",
                hint=f"Shorten the {name}.",
            )
        if "<" in value or ">" in value:
            raise BackendError(
                f"the audit-log {name} contains '<' or '>', which JOC refuses; nothing was "
                "changed.",
                hint=f"Remove those characters from the {name}.",
            )
    if audit.time_spent is not None and audit.time_spent < 0:
        raise BackendError(
            "the audit-log time spent is negative, which JOC refuses; nothing was changed.",
            hint="Give the time spent in whole minutes, 0 or more.",
        )


@runtime_checkable
class Keystore(Protocol):
    @property
    def identity(self) -> TargetIdentity:
        """Name, backend and location of this keystore (recorded in plan files)."""
        ...

    def list_entries(self) -> list[LiveEntry]:
        """Every entry, sorted by alias, with its Agent assignments."""
        ...

    def store(
        self,
        alias: str,
        certificate: str,
        private_key_path: str | None,
        job_resource_folder: str,
        audit: AuditLog,
    ) -> None:
        """Upsert one alias with the full entry; writes the alias's Job Resource into the folder."""
        ...

    def delete(self, alias: str, audit: AuditLog) -> None:
        """Remove an alias and its assignments (idempotent); its Job Resource stays behind."""
        ...

    def add_assignment(self, alias: str, agent_id: str) -> None: ...

    def remove_assignment(self, alias: str, agent_id: str) -> None: ...

    def writer(self, audit: AuditLog) -> AbstractContextManager[None]:
        """An exclusive write session for one apply.

        The local backend takes its lock (waiting a bounded time, then raising
        :class:`~js7certctl.errors.LockError` naming the holder); the JOC backend checks that it
        may write (forced audit comments) before the first write and waits for deployments on exit.
        """
        ...

    def close(self) -> None:
        """Release connections (and log out of JOC); safe to call twice."""
        ...
