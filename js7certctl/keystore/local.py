"""The embedded keystore: a SQLite file that models JOC Cockpit's encipherment semantics.

A plan against this store means the same as a plan against JOC (``spec/joc-api.md``): ``store``
is an upsert keyed by alias that replaces the certificate and the private key path (``None``
clears it) and writes the alias's Job Resource into ``job_resource_folder``, moving it there if it
lives elsewhere; ``delete`` is idempotent, drops the alias's Agent assignments and leaves the Job
Resource behind; assignment calls are idempotent and check neither the alias nor the Agent. Like
JOC, ``store`` refuses text without exactly one ``CERTIFICATE`` or ``PUBLIC KEY`` block (a regular
expression check only: nothing is parsed) and refuses audit-log fields that break JOC's limits.

Storage and durability
    The standard library's :mod:`sqlite3`, one connection per instance, in autocommit mode with
    explicit transactions. Every write is one ``BEGIN IMMEDIATE`` transaction (waiting at most
    ``lock_timeout`` seconds for another writer through SQLite's busy timeout), so a process
    killed with SIGKILL at any moment leaves each call applied whole or not at all.

    The file uses SQLite's default *rollback journal* (``journal_mode=DELETE``) with
    ``synchronous=FULL``, not WAL, because:

    - reading must change nothing: in WAL mode even a reader creates ``-wal`` and ``-shm`` files
      beside the database, while a rollback-journal reader creates no file at all;
    - the store sits in a project folder that may be on a network or container file system, where
      WAL's shared-memory index does not work; a rollback journal works wherever POSIX locks do;
    - one short transaction per call and one writer at a time (the ``writer()`` lock) means WAL's
      concurrency gains buy nothing here. A SIGKILLed writer leaves a hot ``-journal`` file that the
      next connection rolls back automatically.

Audit table
    Every ``store`` and ``delete`` call writes one audit row with the :class:`AuditLog` fields and
    who made it (user, host, pid). Unlike JOC, the audit table also records assignment calls
    (``assignment-add``/``assignment-remove`` with the Agent id); inside ``writer(audit)`` those
    rows carry that apply's audit fields, outside it they carry none.

Locking
    ``writer(audit)`` takes an exclusive ``fcntl.flock`` on ``<db>.lock`` for one apply and records
    the holder (pid, host, user, start time, command) in it. The kernel drops the lock when its
    holder dies, so a lock left by a killed process is free at once; its stale record is simply
    overwritten. ``flock`` is advisory and local to one machine (it is unreliable over NFS).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

from js7certctl.errors import BackendError, LockError
from js7certctl.keystore.base import check_audit
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity

__all__ = ["SCHEMA_VERSION", "LocalKeystore", "LockHolder", "command_summary"]

SCHEMA_VERSION = 1  # the schema below writes this number; bump both together
_VERSION_TABLE = "js7certctl_schema"

_SCHEMA = (
    "CREATE TABLE js7certctl_schema ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " version INTEGER NOT NULL)",
    "INSERT INTO js7certctl_schema (id, version) VALUES (1, 1)",
    "CREATE TABLE certificates ("
    " alias TEXT PRIMARY KEY NOT NULL,"
    " certificate TEXT NOT NULL,"
    " private_key_path TEXT,"
    " updated_at TEXT NOT NULL)",
    "CREATE TABLE assignments ("
    " alias TEXT NOT NULL,"
    " agent_id TEXT NOT NULL,"
    " PRIMARY KEY (alias, agent_id)) WITHOUT ROWID",
    # One Job Resource per alias (name = alias), with JOC's argument values.
    "CREATE TABLE job_resources ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " folder TEXT NOT NULL,"
    " encipherment_certificate TEXT NOT NULL,"
    " encipherment_private_key_path TEXT,"
    " updated_at TEXT NOT NULL)",
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " timestamp TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " alias TEXT NOT NULL,"
    " agent_id TEXT,"
    " comment TEXT,"
    " ticket_link TEXT,"
    " time_spent INTEGER,"
    " user TEXT NOT NULL,"
    " host TEXT NOT NULL,"
    " pid INTEGER NOT NULL)",
)

# JOC's server-side check is a regular expression, nothing more (spec/joc-api.md).
_PEM_BLOCK = re.compile(r"-----BEGIN (CERTIFICATE|PUBLIC KEY)-----.*?-----END \1-----", re.DOTALL)
_LOCK_POLL_SECONDS = 0.05
_SUBCOMMAND = re.compile(r"[a-z][a-z0-9-]{0,31}")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or last held) a keystore's write lock, as recorded in the lock file."""

    pid: int | None
    host: str
    user: str
    since: str
    command: str

    def describe(self) -> str:
        pid = "an unknown pid" if self.pid is None else f"pid {self.pid}"
        return f"{pid} on host {self.host} since {self.since} (command {self.command})"


def command_summary(argv: Sequence[str]) -> str:
    """The program name and subcommand of ``argv``, never any other argument (they may be secret).

    ``argv[1]`` counts as the subcommand only when it looks like one (lower-case word, not an
    option); ``python -m js7certctl`` reads as ``js7certctl``.
    """
    if not argv:
        return "unknown"
    program_path = Path(argv[0])
    program = program_path.name or "unknown"
    if program == "__main__.py" and program_path.parent.name:
        program = program_path.parent.name
    if len(argv) > 1 and _SUBCOMMAND.fullmatch(argv[1]):
        return f"{program} {argv[1]}"
    return program


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no login name (containers)
        return str(os.getuid())


class LocalKeystore:
    """The embedded keystore in one SQLite file (see the module docstring for the semantics).

    ``lock_timeout`` bounds both the wait for the ``writer()`` lock and SQLite's busy wait for
    another process's transaction. Reading never creates anything; the first write creates the
    parent folder (mode 0700) and the database (mode 0600).
    """

    def __init__(self, path: Path, *, name: str = "local", lock_timeout: float = 30.0) -> None:
        self._path = Path(path).resolve()
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._name = name
        self._lock_timeout = max(0.0, float(lock_timeout))
        self._conn: sqlite3.Connection | None = None
        self._mutex = threading.RLock()
        self._session_audit: AuditLog | None = None
        self._in_writer = False

    # -- protocol ---------------------------------------------------------------------------

    @property
    def identity(self) -> TargetIdentity:
        return TargetIdentity(self._name, "local", str(self._path))

    @property
    def path(self) -> Path:
        """The absolute, resolved path of the database file."""
        return self._path

    @property
    def lock_path(self) -> Path:
        """The lock file beside the database (``<db>.lock``)."""
        return self._lock_path

    def list_entries(self) -> list[LiveEntry]:
        return self._read(self._list_entries)

    def store(
        self,
        alias: str,
        certificate: str,
        private_key_path: str | None,
        job_resource_folder: str,
        audit: AuditLog,
    ) -> None:
        _check_certificate(alias, certificate)
        check_audit(audit)
        now = _now()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO certificates (alias, certificate, private_key_path, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (alias) DO UPDATE SET"
                " certificate = excluded.certificate,"
                " private_key_path = excluded.private_key_path,"
                " updated_at = excluded.updated_at",
                (alias, certificate, private_key_path, now),
            )
            conn.execute(
                "INSERT INTO job_resources (name, folder, encipherment_certificate,"
                " encipherment_private_key_path, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET"
                " folder = excluded.folder,"
                " encipherment_certificate = excluded.encipherment_certificate,"
                " encipherment_private_key_path = excluded.encipherment_private_key_path,"
                " updated_at = excluded.updated_at",
                (alias, job_resource_folder, certificate, private_key_path, now),
            )
            self._audit(conn, now, "store", alias, agent_id=None, audit=audit)

        self._write(write)

    def delete(self, alias: str, audit: AuditLog) -> None:
        check_audit(audit)
        now = _now()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM certificates WHERE alias = ?", (alias,))
            conn.execute("DELETE FROM assignments WHERE alias = ?", (alias,))
            self._audit(conn, now, "delete", alias, agent_id=None, audit=audit)

        self._write(write)

    def add_assignment(self, alias: str, agent_id: str) -> None:
        now = _now()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO assignments (alias, agent_id) VALUES (?, ?)",
                (alias, agent_id),
            )
            self._audit(
                conn, now, "assignment-add", alias, agent_id=agent_id, audit=self._session_audit
            )

        self._write(write)

    def remove_assignment(self, alias: str, agent_id: str) -> None:
        now = _now()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM assignments WHERE alias = ? AND agent_id = ?", (alias, agent_id)
            )
            self._audit(
                conn, now, "assignment-remove", alias, agent_id=agent_id, audit=self._session_audit
            )

        self._write(write)

    @contextmanager
    def writer(self, audit: AuditLog) -> Iterator[None]:
        """Hold ``<db>.lock`` exclusively for one apply (see :meth:`_acquire_lock`)."""
        with self._mutex:
            if self._in_writer:
                raise RuntimeError("writer() is already active on this keystore instance")
            self._in_writer = True
        try:
            fd = self._acquire_lock()
            try:
                self._session_audit = audit
                yield
            finally:
                self._session_audit = None
                try:
                    os.ftruncate(fd, 0)  # the record describes a holder; there is none now
                finally:
                    os.close(fd)  # closing the only descriptor releases the flock
        finally:
            self._in_writer = False

    def close(self) -> None:
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    # -- conveniences -----------------------------------------------------------------------

    def lock_holder(self) -> LockHolder | None:
        """The record in the lock file (the current or last holder), or None if there is none."""
        try:
            text = self._lock_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return _parse_holder(text)

    def __enter__(self) -> LocalKeystore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalKeystore({str(self._path)!r}, name={self._name!r})"

    # -- reading ----------------------------------------------------------------------------

    def _list_entries(self, conn: sqlite3.Connection) -> list[LiveEntry]:
        agents: dict[str, list[str]] = {}
        for alias, agent_id in conn.execute("SELECT alias, agent_id FROM assignments"):
            agents.setdefault(alias, []).append(agent_id)
        folders: dict[str, str] = dict(conn.execute("SELECT name, folder FROM job_resources"))
        entries = [
            LiveEntry(
                alias=alias,
                certificate=certificate,
                private_key_path=private_key_path,
                job_resource_folder=folders.get(alias),
                agents=tuple(sorted(agents.get(alias, ()))),
            )
            for alias, certificate, private_key_path in conn.execute(
                "SELECT alias, certificate, private_key_path FROM certificates"
            )
        ]
        entries.sort(key=lambda entry: entry.alias)
        return entries

    def _read(self, body: Callable[[sqlite3.Connection], list[_T]]) -> list[_T]:
        """Run ``body`` in one read transaction; a missing or empty database reads as empty."""
        with self._mutex:
            try:
                conn = self._connect(create=False)
                if conn is None:
                    return []
                conn.execute("BEGIN")
                try:
                    if not self._schema_ready(conn):
                        return []
                    return body(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._translate(exc, writing=False) from None

    # -- writing ----------------------------------------------------------------------------

    def _write(self, body: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction, creating the store if needed."""
        with self._mutex:
            try:
                conn = self._connect(create=True)
                assert conn is not None
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not self._schema_ready(conn):
                        for statement in _SCHEMA:
                            conn.execute(statement)
                    body(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._translate(exc, writing=True) from None
            except UnicodeEncodeError:
                raise BackendError(
                    f"cannot write to the keystore {self._path}: a value is not valid text "
                    "(it contains characters that cannot be encoded as UTF-8).",
                    hint="Check the alias, certificate, paths and audit fields for broken text.",
                ) from None

    def _audit(
        self,
        conn: sqlite3.Connection,
        timestamp: str,
        action: str,
        alias: str,
        *,
        agent_id: str | None,
        audit: AuditLog | None,
    ) -> None:
        audit = audit or AuditLog()
        conn.execute(
            "INSERT INTO audit (timestamp, action, alias, agent_id, comment, ticket_link,"
            " time_spent, user, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                timestamp,
                action,
                alias,
                agent_id,
                audit.comment,
                audit.ticket_link,
                audit.time_spent,
                _current_user(),
                socket.gethostname(),
                os.getpid(),
            ),
        )

    # -- connection and schema --------------------------------------------------------------

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if not self._path.exists():
            if not create:
                return None
            self._create_file()
        # mode=rw never creates the file (it opens read-only if the OS write-protects it).
        uri = "file:" + quote(str(self._path)) + "?mode=rw"
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=self._lock_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA trusted_schema = OFF")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _create_file(self) -> None:
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first
        except OSError as exc:
            raise BackendError(
                f"cannot create the keystore {self._path}: {exc.strerror or exc}.",
                hint="Check that the folder is writable, or point the target's path elsewhere.",
            ) from None
        os.close(fd)

    def _schema_ready(self, conn: sqlite3.Connection) -> bool:
        """True if the schema exists and is ours; False for an empty database; else raises."""
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if not tables:
            return False
        if _VERSION_TABLE not in tables:
            raise BackendError(
                f"{self._path} is a SQLite database but not a js7certctl keystore.",
                hint="Point the target's path at a keystore file, or at a new file "
                "that js7certctl will create.",
            )
        rows = conn.execute("SELECT version FROM js7certctl_schema").fetchall()
        version: Any = rows[0][0] if len(rows) == 1 else None
        if version == SCHEMA_VERSION:
            return True
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise BackendError(
                f"the keystore {self._path} has schema version {version}, newer than this "
                f"js7certctl understands ({SCHEMA_VERSION}).",
                hint="Upgrade js7certctl to the version that wrote this keystore.",
            )
        raise BackendError(
            f"the keystore {self._path} has an unknown schema version ({version!r}).",
            hint="Restore the file from a backup, or move it away to start a new keystore.",
        )

    def _translate(self, exc: sqlite3.Error, *, writing: bool) -> BackendError:
        """A clear BackendError for an SQLite failure; the connection is dropped unless busy."""
        errorname = str(getattr(exc, "sqlite_errorname", ""))
        if errorname.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            holder = self.lock_holder()
            who = f" (its write lock is held by {holder.describe()})" if holder else ""
            return LockError(
                f"the keystore {self._path} stayed busy for more than {self._lock_timeout:g} "
                f"seconds: another process is writing to it{who}.",
                hint="Wait for the other js7certctl run to finish, then try again.",
            )
        self.close()
        if errorname == "SQLITE_NOTADB":
            return BackendError(
                f"{self._path} is not a js7certctl keystore: the file is not a SQLite database.",
                hint="Point the target's path at a keystore file, or move this file away "
                "to start a new, empty keystore.",
            )
        if errorname.startswith("SQLITE_CORRUPT"):
            return BackendError(
                f"the keystore {self._path} is damaged ({exc}).",
                hint="Restore it from a backup, or move it away and import the manifests again.",
            )
        if errorname.startswith("SQLITE_READONLY") and not writing:
            return BackendError(
                f"cannot read the keystore {self._path}: an interrupted write must be rolled "
                "back first, and the file or its folder is read-only.",
                hint="Run js7certctl once as a user who may write the file and its folder.",
            )
        if errorname.startswith("SQLITE_READONLY"):
            return BackendError(
                f"cannot write to the keystore {self._path}: the file or its folder is read-only.",
                hint="Make the file and its folder writable for this user.",
            )
        if errorname.startswith("SQLITE_CANTOPEN"):
            return BackendError(
                f"cannot open the keystore {self._path}.",
                hint="Check that the path names a file (not a folder) and that it is readable.",
            )
        verb = "write to" if writing else "read"
        return BackendError(
            f"cannot {verb} the keystore {self._path}: {exc}.",
            hint="Check the file, its folder and the free disk space, then try again.",
        )

    # -- the writer lock --------------------------------------------------------------------

    def _acquire_lock(self) -> int:
        """Open ``<db>.lock``, take ``flock(LOCK_EX)`` polling until ``lock_timeout``, record us.

        Returns the open descriptor; closing it releases the lock.
        """
        try:
            self._lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackendError(
                f"cannot open the lock file {self._lock_path}: {exc.strerror or exc}.",
                hint="Check that the keystore's folder is writable for this user.",
            ) from None
        try:
            deadline = time.monotonic() + self._lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._locked_error() from None
                    time.sleep(min(_LOCK_POLL_SECONDS, remaining))
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "user": _current_user(),
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": command_summary(sys.argv),
            }
            data = (json.dumps(record) + "\n").encode("utf-8")
            os.ftruncate(fd, 0)  # overwrite any stale record left by a killed holder
            os.pwrite(fd, data, 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _locked_error(self) -> LockError:
        holder = self.lock_holder()
        who = holder.describe() if holder else "another process (it left no record)"
        return LockError(
            f"the keystore {self._path} is locked by {who}; gave up after waiting "
            f"{self._lock_timeout:g} seconds.",
            hint="Wait for that run to finish (or stop it) and try again; "
            "a killed process releases the lock by itself.",
        )


def _parse_holder(text: str) -> LockHolder | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        host=str(data.get("host", "unknown")),
        user=str(data.get("user", "unknown")),
        since=str(data.get("since", "unknown")),
        command=str(data.get("command", "unknown")),
    )


def _check_certificate(alias: str, certificate: str) -> None:
    """JOC's regular-expression-only check: exactly one CERTIFICATE or PUBLIC KEY block."""
    blocks = len(_PEM_BLOCK.findall(certificate))
    if blocks == 0:
        raise BackendError(
            f"the keystore refused alias {alias!r}: the value is neither a X509 certificate "
            "nor a public key.",
            hint="Give exactly one PEM CERTIFICATE or PUBLIC KEY block.",
        )
    if blocks > 1:
        raise BackendError(
            f"the keystore refused alias {alias!r}: certificate or key bundles are not allowed, "
            "only a single certificate or public key is required.",
            hint="Give exactly one PEM CERTIFICATE or PUBLIC KEY block.",
        )
