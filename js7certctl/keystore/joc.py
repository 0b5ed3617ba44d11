"""JOC Cockpit (2.7.1 or later) as the live keystore, over its REST API (``spec/joc-api.md``).

One :class:`JocKeystore` is one run: one :class:`httpx.Client` (connection reuse, a timeout on
every call) and one JOC session.

Connecting
    The target's ``url`` is JOC's base address (``https://joc.example.com:4443``; a trailing
    ``/joc/api`` is accepted). TLS certificates are verified by default: against ``caBundle``
    when the target names one, else against httpx's default trust store (certifi, or the file
    in ``SSL_CERT_FILE``). ``insecure=True`` (``--insecure``, which the CLI warns about) turns
    verification off. A plain ``http://`` URL works, with a warning through ``notify`` that
    the password and the session token travel unencrypted.

Logging in
    Lazily, on the first call that needs it: ``GET /joc/api/version`` first (no login; JOC
    older than 2.7.1 is refused naming the version found), then ``authentication/login``,
    either with Basic auth (account and password from :func:`credentials_from_env`:
    ``JS7_USER`` and ``JS7_PASSWORD`` or ``JS7_PASSWORD_FILE``) or, when the target names
    ``clientCert``/``clientKey``, with the client certificate alone (mutual TLS, no
    Basic header). One session serves the whole run; when JOC answers 440 or 401 in the
    middle (idle expiry, a restarted JOC), the keystore logs in again and repeats that call,
    once per failed call. :meth:`JocKeystore.close` logs out (best effort) and closes the
    connections; the CLI calls it on success, on errors and on ^C.

Retries
    Every JOC call this backend makes is idempotent: reads, ``store`` (an upsert of the full
    entry), ``delete`` (unknown aliases are a 200) and assignment add/remove (they check
    nothing and change nothing twice). So each is repeated, up to ``retries`` more times with
    exponential backoff, after a transport failure (refused or dropped connection, timeout)
    or a 502/503/504 answer. Repeating a ``store`` whose answer was lost writes the same entry
    again (and a second JOC audit-log entry); repeating a ``delete`` or an assignment call
    changes nothing. The login is repeated too (at worst an unused session expires in JOC);
    the logout is not. Nothing else is repeated: a 500 or any 4xx answer is an error at once,
    and a 433 (approval required) is never repeated.

Writing
    ``store`` always sends the full entry: ``certificate``, ``jobResourceFolder`` and
    ``privateKeyPath`` (omitted when None, which clears it in JOC) and the audit log. The text
    must hold exactly one ``CERTIFICATE`` or ``PUBLIC KEY`` block (checked with
    :func:`js7certctl.certs.parse_certificate_text`); text containing a private key is refused
    before anything is sent. Text outside the block (blank lines, comments, ``CRLF``) is kept,
    so that the stored text is what was given, byte for byte; other PEM blocks are cut away
    (only the one block is sent). Manifests already give exactly one normalised block.

    :meth:`JocKeystore.writer` reads ``joc/properties`` first: when JOC forces audit-log
    comments and the apply has none, it fails before the first write. On exit it waits (at
    most ``deploy_timeout`` seconds) for JOC's background deployment of the stored aliases'
    Job Resources at security level LOW or MEDIUM, polling ``inventory/deployable``, and
    reports through ``notify`` any not deployed in time; at HIGH JOC deploys nothing, which is
    reported too. The wait happens also when the apply failed part way (for what was stored),
    but not after ^C. Deletes leave their Job Resource in JOC's inventory; the apply report
    names those (from the plan), so this backend does not repeat it.

Reading
    ``list_entries`` makes ``2 + N`` calls for N aliases: the certificates, all assignments
    (``{"agentIds": []}``: JOC ignores the alias filter) filtered and sorted here, and one
    ``inventory/deployable`` per alias for its Job Resource folder, the way JOC's UI reads it,
    ``max_workers`` at a time. An alias without a Job Resource has folder None ("not
    compared"); so has every alias when the account may not read the inventory (reported once).

Secrets
    The password and the session token are never part of a message, a repr or an exception:
    errors quote only JOC's ``error.message`` (never a whole body; a 403 body holds the token)
    and are raised outside of any ``except`` block, so that no httpx exception (whose request
    carries the headers) is chained to them. Foreign text is scrubbed of the secrets as well.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from js7certctl import certs
from js7certctl.errors import BackendError, ConfigError
from js7certctl.keystore import logscrub
from js7certctl.keystore.base import check_audit
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity

__all__ = [
    "MIN_VERSION",
    "PERMISSION_INVENTORY_VIEW",
    "PERMISSION_MANAGE",
    "PERMISSION_VIEW",
    "Credentials",
    "JocKeystore",
    "JocProperties",
    "credentials_from_env",
    "parse_version",
]

MIN_VERSION = (2, 7, 1)
ASSIGNMENT_MANAGE_VERSION = (2, 8)
PERMISSION_VIEW = "sos:products:joc:administration:certificates:view"
PERMISSION_MANAGE = "sos:products:joc:administration:certificates:manage"
PERMISSION_INVENTORY_VIEW = "sos:products:joc:inventory:view"

ENV_USER = "JS7_USER"
ENV_PASSWORD = "JS7_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_PASSWORD_FILE = "JS7_PASSWORD_FILE"  # noqa: S105 - a variable name

_API = "/joc/api"
_RETRY_STATUSES = frozenset({502, 503, 504})
_SESSION_STATUSES = frozenset({401, 440})
_MISSING_COMMENT_CODE = "JOC-300"
_FOREIGN_TEXT_MAX = 300
_LOGOUT_TIMEOUT = 5.0
_POLL_FIRST = 0.1
_POLL_MAX = 1.0

_T = TypeVar("_T")
_R = TypeVar("_R")


# -- credentials ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A JOC account and its password (the password never appears in a repr)."""

    user: str
    password: str = field(repr=False)


def credentials_from_env(env: Mapping[str, str]) -> Credentials:
    """``JS7_USER`` and ``JS7_PASSWORD``, or the password in the file named by
    ``JS7_PASSWORD_FILE`` (one trailing line break is dropped)."""
    user = env.get(ENV_USER, "")
    password = env.get(ENV_PASSWORD)
    password_file = env.get(ENV_PASSWORD_FILE)
    if password and password_file:
        raise ConfigError(
            f"both {ENV_PASSWORD} and {ENV_PASSWORD_FILE} are set; js7certctl takes the JOC "
            "password from one of them only.",
            hint=f"Unset one of {ENV_PASSWORD} and {ENV_PASSWORD_FILE}.",
        )
    if password_file:
        password = _read_password_file(password_file)
    if not user or not password:
        missing = [ENV_USER] if not user else []
        if not password:
            missing.append(f"{ENV_PASSWORD} (or {ENV_PASSWORD_FILE})")
        raise ConfigError(
            "the JOC account is not configured: set " + " and ".join(missing) + ".",
            hint=f"JOC logins take the account from {ENV_USER} and its password from "
            f"{ENV_PASSWORD} or from the file named by {ENV_PASSWORD_FILE}; or give the target "
            "a clientCert and clientKey for a login with a client certificate.",
        )
    return Credentials(user, password)


def _read_password_file(name: str) -> str:
    path = Path(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot read the JOC password file {path} named by {ENV_PASSWORD_FILE}: {reason}.",
            hint="Check the file's path and permissions.",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"the JOC password file {path} named by {ENV_PASSWORD_FILE} is not UTF-8 text.",
            hint="Write the password to the file as UTF-8 text.",
        ) from None
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    if not text:
        raise ConfigError(
            f"the JOC password file {path} named by {ENV_PASSWORD_FILE} is empty.",
            hint="Write the account's password into it.",
        )
    return text


# -- small helpers ----------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"2.8.1"`` -> ``(2, 8, 1)``; ``"2.7.1-SNAPSHOT"`` -> ``(2, 7, 1)``; None if no number."""
    parts: list[int] = []
    for piece in text.strip().split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts) if parts else None


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True, slots=True)
class JocProperties:
    """What ``joc/properties`` says that matters here."""

    security_level: str  # "LOW", "MEDIUM", "HIGH"
    force_comments: bool


def _audit_json(audit: AuditLog) -> dict[str, Any] | None:
    body: dict[str, Any] = {}
    if audit.comment is not None:
        body["comment"] = audit.comment
    if audit.time_spent is not None:
        body["timeSpent"] = audit.time_spent
    if audit.ticket_link is not None:
        body["ticketLink"] = audit.ticket_link
    return body or None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _is_tls_verify_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        current = current.__cause__ or current.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _no_key_password() -> bytes:
    # An encrypted client key must not make OpenSSL prompt on the terminal: an empty password
    # fails to decrypt it, and the error says so.
    return b""


@dataclass(frozen=True, slots=True)
class _Failure:
    """A transport failure, described without anything from the request."""

    kind: str  # "tls", "timeout", "connect", "broken"
    reason: str


# -- the backend ------------------------------------------------------------------------------


class JocKeystore:
    """JOC Cockpit's encipherment API as a :class:`~js7certctl.keystore.base.Keystore`.

    ``url`` is JOC's base address, as the target's ``url`` holds it (also the identity's
    location). ``credentials`` are needed unless ``client_cert``/``client_key`` are given
    (mutual TLS). ``timeout`` bounds every call (seconds), ``retries`` and ``backoff`` (the
    first pause, doubled each time) govern repeating idempotent calls, ``deploy_timeout``
    bounds the wait for deployments in :meth:`writer`, ``max_workers`` bounds parallel reads
    of Job Resource folders. ``notify`` receives notices that are no errors. See the module
    docstring for the behaviour.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "joc",
        credentials: Credentials | None = None,
        ca_bundle: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.25,
        deploy_timeout: float = 30.0,
        max_workers: int = 8,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self._url = url
        self._name = name
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if "@" in parts.netloc:
            raise ConfigError(
                f"the url of target {name!r} holds a user name or password; credentials never "
                "belong in the repository.",
                hint=f"Remove them from the url and set {ENV_USER} and {ENV_PASSWORD} (or "
                f"{ENV_PASSWORD_FILE}) instead.",
            )
        try:
            valid = scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is no number
            valid = False
        if not valid:
            shown = "" if "@" in url else f", not {url!r}"
            raise ConfigError(
                f"the url of target {name!r} must be JOC's address such as "
                f"https://joc.example.com:4443{shown}.",
                hint="Fix the target's url in js7certctl.yaml.",
            )
        if (client_cert is None) != (client_key is None):
            raise ConfigError(
                f"target {name!r} needs both clientCert and clientKey for a client certificate "
                "login.",
                hint="Give both in js7certctl.yaml, or neither.",
            )
        self._mutual_tls = client_cert is not None
        if self._mutual_tls and scheme != "https":
            raise ConfigError(
                f"target {name!r} logs in with a client certificate, which needs an https:// "
                f"url, not {url!r}.",
                hint="Use JOC's https address.",
            )
        if not self._mutual_tls and credentials is None:
            raise ConfigError(
                f"no JOC account is given for target {name!r}.",
                hint=f"Set {ENV_USER} and {ENV_PASSWORD} (or {ENV_PASSWORD_FILE}).",
            )
        path = parts.path.rstrip("/")
        if path.endswith(_API):
            path = path[: -len(_API)]
        self._base = f"{scheme}://{parts.netloc}{path}"
        self._api = self._base + _API
        self._plain_http = scheme == "http"
        self._credentials = None if self._mutual_tls else credentials
        self._account = (
            f"account {self._credentials.user!r}"
            if self._credentials is not None
            else "the account of the client certificate"
        )
        self._timeout = float(timeout)
        self._retries = max(0, int(retries))
        self._backoff = max(0.0, float(backoff))
        self._deploy_timeout = max(0.0, float(deploy_timeout))
        self._max_workers = max(1, int(max_workers))
        self._notify_callback = notify
        verify: ssl.SSLContext | bool = False
        if not self._plain_http:
            verify = self._ssl_context(ca_bundle, client_cert, client_key, insecure)
        try:
            self._http = httpx.Client(
                base_url=self._api,
                verify=verify,
                timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
                headers={"Accept": "application/json"},
                follow_redirects=False,
            )
        except httpx.InvalidURL:
            raise ConfigError(
                f"the url of target {name!r} is not a valid address: {url!r}.",
                hint="Fix the target's url in js7certctl.yaml, e.g. https://joc.example.com:4443.",
            ) from None
        self._lock = threading.RLock()
        self._secrets: set[str] = set()
        self._authorization: str | None = None
        if self._credentials is not None:
            basic = base64.b64encode(
                f"{self._credentials.user}:{self._credentials.password}".encode()
            ).decode("ascii")
            self._authorization = "Basic " + basic
            self._secrets.update({self._credentials.password, basic})
        self._token: str | None = None
        self._version: tuple[int, ...] | None = None
        self._properties: JocProperties | None = None
        self._closed = False
        self._in_writer = False
        self._stored: dict[str, str] = {}  # alias -> Job Resource folder, inside writer()
        self._warned: set[str] = set()
        logscrub.watch(self)  # DEBUG logs of httpcore would show the session token

    # -- protocol ---------------------------------------------------------------------------

    @property
    def identity(self) -> TargetIdentity:
        return TargetIdentity(self._name, "joc", self._url)

    def list_entries(self) -> list[LiveEntry]:
        data = self._call(
            "encipherment/certificate", {}, what="to list the certificates", need=PERMISSION_VIEW
        )
        rows = self._rows(data, "certificates", "to list the certificates")
        found: dict[str, tuple[str, str | None]] = {}
        for row in rows:
            alias, certificate = row.get("certAlias"), row.get("certificate")
            key_path = row.get("privateKeyPath")
            if not isinstance(alias, str) or not isinstance(certificate, str):
                raise self._unexpected("to list the certificates")
            if key_path is not None and not isinstance(key_path, str):
                raise self._unexpected("to list the certificates")
            found[alias] = (certificate, key_path)
        agents = self._assignments(set(found))
        aliases = sorted(found)
        folders = self._folders(aliases)
        return [
            LiveEntry(
                alias=alias,
                certificate=found[alias][0],
                private_key_path=found[alias][1],
                job_resource_folder=folders.get(alias),
                agents=tuple(sorted(agents.get(alias, ()))),
            )
            for alias in aliases
        ]

    def store(
        self,
        alias: str,
        certificate: str,
        private_key_path: str | None,
        job_resource_folder: str,
        audit: AuditLog,
    ) -> None:
        text = _certificate_to_send(alias, certificate)
        body: dict[str, Any] = {
            "certAlias": alias,
            "certificate": text,
            "jobResourceFolder": job_resource_folder,
        }
        if private_key_path is not None:
            body["privateKeyPath"] = private_key_path
        audit_body = _audit_json(audit)
        if audit_body is not None:
            body["auditLog"] = audit_body
        self._call(
            "encipherment/certificate/store",
            body,
            what=f"to store alias {alias!r}",
            need=PERMISSION_MANAGE,
        )
        if self._in_writer:
            self._stored[alias] = job_resource_folder

    def delete(self, alias: str, audit: AuditLog) -> None:
        body: dict[str, Any] = {"certAlias": alias}
        audit_body = _audit_json(audit)
        if audit_body is not None:
            body["auditLog"] = audit_body
        self._call(
            "encipherment/certificate/delete",
            body,
            what=f"to delete alias {alias!r}",
            need=PERMISSION_MANAGE,
        )

    def add_assignment(self, alias: str, agent_id: str) -> None:
        self._call(
            "encipherment/assignment/add",
            {"certAlias": alias, "agentId": agent_id},
            what=f"to assign alias {alias!r} to Agent {agent_id!r}",
            need=self._assignment_permission,
        )

    def remove_assignment(self, alias: str, agent_id: str) -> None:
        self._call(
            "encipherment/assignment/remove",
            {"certAlias": alias, "agentId": agent_id},
            what=f"to remove the assignment of alias {alias!r} from Agent {agent_id!r}",
            need=self._assignment_permission,
        )

    @contextmanager
    def writer(self, audit: AuditLog) -> Iterator[None]:
        """Check that JOC takes this apply's audit log, then wait for deployments on exit."""
        with self._lock:
            if self._in_writer:
                raise RuntimeError("writer() is already active on this keystore instance")
            self._in_writer = True
        try:
            properties = self.properties()
            if properties.force_comments and not audit.comment:
                raise BackendError(
                    "JOC requires an audit-log comment for every change "
                    "(forceCommentsForAuditLog), and this apply has none; nothing was changed.",
                    hint="Give one with --comment TEXT (an empty --comment counts as none).",
                )
            check_audit(audit)
            self._stored = {}
            try:
                yield
            except Exception:  # a failed step: still wait for what was stored before it
                self._after_writes(properties)
                raise
            # (^C, a BaseException, skips the wait; close() still logs out)
            self._after_writes(properties)
        finally:
            self._in_writer = False
            self._stored = {}

    def close(self) -> None:
        """Log out (best effort, once) and close the connections; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            token, self._token = self._token, None
        try:
            if token is not None:
                self._logout(token)
        finally:
            self._http.close()

    # -- conveniences -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """JOC's base address as used (``/joc/api`` is appended to it)."""
        return self._base

    def version(self) -> tuple[int, ...]:
        """JOC's version (read once, before the first login)."""
        self._ensure_session()
        assert self._version is not None
        return self._version

    def properties(self) -> JocProperties:
        """Security level and forced comments from ``joc/properties`` (read once)."""
        if self._properties is None:
            data = self._call("joc/properties", {}, what="to read its properties", need=None)
            level = data.get("securityLevel")
            forced = data.get("forceCommentsForAuditLog")
            self._properties = JocProperties(
                security_level=level.upper() if isinstance(level, str) else "MEDIUM",
                force_comments=forced is True,
            )
        return self._properties

    def __enter__(self) -> JocKeystore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JocKeystore({self._url!r}, name={self._name!r})"

    # -- reading helpers --------------------------------------------------------------------

    def _rows(self, data: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
        rows = data.get(key, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise self._unexpected(what)
        return rows

    def _assignments(self, aliases: set[str]) -> dict[str, set[str]]:
        # JOC ignores the certAliases filter (a known bug): read all and filter here.
        what = "to read the Agent assignments"
        data = self._call("encipherment/assignment", {"agentIds": []}, what=what, need=None)
        agents: dict[str, set[str]] = {}
        for row in self._rows(data, "mappings", what):
            alias, ids = row.get("certAlias"), row.get("agentId")
            if isinstance(ids, str):
                ids = [ids]
            if not isinstance(alias, str) or not isinstance(ids, list):
                raise self._unexpected(what)
            if not all(isinstance(agent, str) for agent in ids):
                raise self._unexpected(what)
            if alias in aliases:
                agents.setdefault(alias, set()).update(ids)
        return agents

    def _folders(self, aliases: Sequence[str]) -> dict[str, str]:
        """The Job Resource folder of each alias that has one (JOC's UI reads it this way)."""
        try:
            found = self._map(self._deployable, aliases)
        except _NoInventoryPermission:
            self._warn_once(
                "inventory",
                f"the JOC {self._account} may not read the inventory "
                f"({PERMISSION_INVENTORY_VIEW}), so the Job Resource folders of the "
                "certificates are not compared.",
            )
            return {}
        return {
            alias: info[0] for alias, info in zip(aliases, found, strict=True) if info is not None
        }

    def _deployable(self, alias: str) -> tuple[str, bool] | None:
        """(folder, deployed) of the alias's Job Resource, or None when there is none."""
        what = f"to read the Job Resource of alias {alias!r}"
        response = self._request(
            "inventory/deployable", {"path": alias, "objectType": "JOBRESOURCE"}, what=what
        )
        if response.status_code == 420:
            return None  # no such object
        if response.status_code == 403:
            raise _NoInventoryPermission
        data = self._checked(response, what, need=PERMISSION_INVENTORY_VIEW)
        deployable = data.get("deployable")
        if not isinstance(deployable, dict):
            raise self._unexpected(what)
        folder, deployed = deployable.get("folder"), deployable.get("deployed")
        if not isinstance(folder, str):
            raise self._unexpected(what)
        return folder, deployed is True

    def _map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``function`` over ``items``, at most ``max_workers`` at a time, results in order."""
        if len(items) <= 1 or self._max_workers == 1:
            return [function(item) for item in items]
        self._ensure_session()  # log in once, not once per thread
        pool = ThreadPoolExecutor(
            max_workers=min(self._max_workers, len(items)), thread_name_prefix="js7certctl-joc"
        )
        try:
            return list(pool.map(function, items))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- after an apply ---------------------------------------------------------------------

    def _after_writes(self, properties: JocProperties) -> None:
        stored = dict(self._stored)
        self._stored = {}
        if not stored:
            return
        names = ", ".join(_resource(folder, alias) for alias, folder in sorted(stored.items()))
        if properties.security_level == "HIGH":
            self._notify(
                "JOC runs at security level HIGH, so it does not deploy the Job Resources of the "
                f"stored certificates by itself: deploy {names} to the Controllers in JOC."
            )
            return
        self._wait_for_deployment(sorted(stored), stored)

    def _wait_for_deployment(self, aliases: list[str], folders: dict[str, str]) -> None:
        deadline = time.monotonic() + self._deploy_timeout
        pending = list(aliases)
        pause = _POLL_FIRST
        while True:
            try:
                states = self._map(self._deployable, pending)
            except _NoInventoryPermission:
                self._notify(
                    "cannot tell whether JOC deployed the Job Resources of the stored "
                    f"certificates: the JOC {self._account} may not read the inventory "
                    f"({PERMISSION_INVENTORY_VIEW}); check them in JOC."
                )
                return
            except BackendError as exc:
                self._notify(
                    "cannot tell whether JOC deployed the Job Resources of the stored "
                    f"certificates: {exc.message} Check them in JOC."
                )
                return
            pending = [
                alias
                for alias, state in zip(pending, states, strict=True)
                if state is None or not state[1]
            ]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            time.sleep(min(pause, remaining))
            pause = min(pause * 1.5, _POLL_MAX)
        if pending:
            names = ", ".join(_resource(folders[alias], alias) for alias in pending)
            self._notify(
                f"JOC has not deployed the Job Resource(s) {names} within "
                f"{self._deploy_timeout:g} seconds (--deploy-timeout). JOC deploys them in the "
                "background, and the logout that follows now can stop that: check them in "
                "JOC's inventory and deploy them there if they stay undeployed."
            )

    # -- calls ------------------------------------------------------------------------------

    @property
    def _assignment_permission(self) -> str:
        version = self.version()
        return PERMISSION_MANAGE if version >= ASSIGNMENT_MANAGE_VERSION else PERMISSION_VIEW

    def _call(
        self, endpoint: str, body: dict[str, Any], *, what: str, need: str | None
    ) -> dict[str, Any]:
        """POST ``body`` to ``endpoint`` in the session; the JSON answer, or a mapped error."""
        return self._checked(self._request(endpoint, body, what=what), what, need=need)

    def _request(self, endpoint: str, body: dict[str, Any], *, what: str) -> httpx.Response:
        """POST in the session; logs in again once when JOC says the session has ended."""
        token = self._ensure_session()
        response = self._send("POST", endpoint, body, token=token, what=what)
        if response.status_code not in _SESSION_STATUSES:
            return response
        token = self._login_again(token)
        response = self._send("POST", endpoint, body, token=token, what=what)
        if response.status_code in _SESSION_STATUSES:
            raise BackendError(
                f"JOC at {self._base} ended the session again right after a new login, when "
                f"asked {what}.",
                hint="Check JOC's session settings and log (joc.log), then try again.",
            )
        return response

    def _send(
        self,
        method: str,
        endpoint: str,
        body: dict[str, Any] | None,
        *,
        token: str | None,
        what: str,
        auth: str | None = None,
        retry: bool = True,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One HTTP call, repeated after transport failures and 502/503/504 when ``retry``."""
        headers: dict[str, str] = {}
        if token is not None:
            headers["X-Access-Token"] = token
        if auth is not None:
            headers["Authorization"] = auth
        content = b"" if body is None else json.dumps(body).encode("utf-8")
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempts = 1 + (self._retries if retry else 0)
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        for attempt in range(attempts):
            failure: _Failure | None = None
            response: httpx.Response | None = None
            try:
                response = self._http.request(
                    method, "/" + endpoint, content=content, headers=headers, **extra
                )
            except httpx.RequestError as exc:
                failure = self._describe(exc)
            # Decided outside the except block: nothing of httpx's exception (its request has
            # the headers) gets chained to the error raised below.
            last = attempt + 1 == attempts
            if failure is None and response is not None:
                if response.status_code not in _RETRY_STATUSES or last:
                    return response
            elif failure is not None and (last or failure.kind == "tls"):
                raise self._transport_error(failure, what)
            time.sleep(self._backoff * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _describe(self, exc: httpx.RequestError) -> _Failure:
        if isinstance(exc, httpx.ConnectError) and _is_tls_verify_failure(exc):
            return _Failure("tls", self._foreign(str(exc)))
        if isinstance(exc, httpx.TimeoutException):
            return _Failure("timeout", "")
        if isinstance(exc, httpx.ConnectError):
            return _Failure("connect", self._foreign(str(exc)))
        if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
            return _Failure("broken", self._foreign(str(exc)))
        return _Failure("broken", type(exc).__name__)  # may quote a header: name only

    def _transport_error(self, failure: _Failure, what: str) -> BackendError:
        if failure.kind == "tls":
            return BackendError(
                f"cannot verify the TLS certificate of JOC at {self._base}: {failure.reason}.",
                hint="Set the target's caBundle to the CA certificate (PEM) that signed JOC's "
                "certificate; only for a test system, --insecure turns verification off.",
            )
        if failure.kind == "timeout":
            return BackendError(
                f"JOC at {self._base} did not answer within {self._timeout:g} seconds when "
                f"asked {what}.",
                hint="Check that JOC is running and not overloaded, then try again; "
                "`js7certctl plan` shows what remains.",
            )
        if failure.kind == "connect":
            return BackendError(
                f"cannot reach JOC at {self._base} {what}: {failure.reason}.",
                hint="Check the target's url (JOC's address, e.g. https://joc.example.com:4443), "
                "that JOC is running and that this machine may connect to it (firewall, proxy).",
            )
        return BackendError(
            f"the connection to JOC at {self._base} broke when asked {what}: {failure.reason}.",
            hint="Check JOC and the network, then run `js7certctl plan` to see what remains.",
        )

    def _checked(self, response: httpx.Response, what: str, *, need: str | None) -> dict[str, Any]:
        """The JSON object of a 200 answer, or JOC's error as a :class:`BackendError`."""
        status = response.status_code
        if status == 200:
            data = _json_object(response)
            if data is None:
                raise self._unexpected(what)
            return data
        raise self._status_error(response, what, need=need)

    def _status_error(
        self, response: httpx.Response, what: str, *, need: str | None
    ) -> BackendError:
        """JOC's non-200 answer as one clear sentence (matched on status and error code)."""
        status = response.status_code
        error = self._error_of(response)
        code, message = error if error is not None else (None, None)
        if status == 420 and code == _MISSING_COMMENT_CODE:
            return BackendError(
                f"JOC refused {what}: it requires an audit-log comment (forceCommentsForAuditLog).",
                hint="Give one with --comment TEXT.",
            )
        if status == 420:
            return BackendError(
                f"JOC refused {what}: {message or 'no reason given'}.",
                hint="Correct what JOC's message names, then try again.",
            )
        if status == 403:
            permission = f"the permission {need}" if need else "a permission"
            return BackendError(
                f"JOC refused {what}: the {self._account} lacks {permission} (HTTP 403).",
                hint="Grant it to the account's role in JOC, or use an account that has it.",
            )
        if status == 433:
            return BackendError(
                f"JOC refused {what}: the change needs the approval of a second person "
                "(four-eyes principle, HTTP 433), so it was not made.",
                hint="Have it approved in JOC, or use an account that needs no approval; "
                "js7certctl does not repeat such calls.",
            )
        if status == 404:
            return BackendError(
                f"JOC at {self._base} has no such API (HTTP 404 when asked {what}).",
                hint="Check that the target's url is JOC's address (without /joc/api) and that "
                "JOC is version 2.7.1 or later.",
            )
        detail = f": {message}" if message else ""
        return BackendError(
            f"JOC failed {what}: HTTP {status}{detail}.",
            hint="Check JOC's log (joc.log) and try again; `js7certctl plan` shows what remains.",
        )

    def _error_of(self, response: httpx.Response) -> tuple[str | None, str | None] | None:
        """``error.code`` and ``error.message`` of a JOC error body; nothing else of it."""
        data = _json_object(response)
        error = data.get("error") if data is not None else None
        if not isinstance(error, dict):
            return None
        code, message = error.get("code"), error.get("message")
        return (
            code if isinstance(code, str) else None,
            self._foreign(message) if isinstance(message, str) and message.strip() else None,
        )

    def _unexpected(self, what: str) -> BackendError:
        return BackendError(
            f"JOC at {self._base} gave an answer js7certctl does not understand when asked {what}.",
            hint="Check that the target's url is JOC's address and JOC is version 2.7.1 or later.",
        )

    def _foreign(self, text: str) -> str:
        """Text from JOC or the network, fit for a message: one line, short, no secret."""
        text = " ".join(text.split())
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        if len(text) > _FOREIGN_TEXT_MAX:
            text = text[: _FOREIGN_TEXT_MAX - 3] + "..."
        return text.rstrip(".")

    # -- session ----------------------------------------------------------------------------

    def _ensure_session(self) -> str:
        with self._lock:
            if self._closed:
                raise RuntimeError("this JOC keystore is closed")
            if self._token is None:
                if self._version is None:
                    self._version = self._read_version()
                    if self._plain_http:
                        self._warn_once(
                            "http",
                            f"the JOC url {self._base} is plain http://: the password and the "
                            "session token travel unencrypted; prefer JOC's https address.",
                        )
                self._token = self._login()
            return self._token

    def _login_again(self, failed: str) -> str:
        """A new session after JOC ended ``failed`` (once, however many threads saw it end)."""
        with self._lock:
            if self._token == failed:
                self._token = None
            return self._ensure_session()

    def _read_version(self) -> tuple[int, ...]:
        what = "for its version"
        response = self._send("GET", "version", None, token=None, what=what)
        if response.status_code == 404:
            raise BackendError(
                f"there is no JOC Cockpit API at {self._base} (GET /joc/api/version answered 404).",
                hint="Check the target's url: it is JOC's address without /joc/api, e.g. "
                "https://joc.example.com:4443.",
            )
        data = self._checked(response, what, need=None)
        text = data.get("version")
        version = parse_version(text) if isinstance(text, str) else None
        if version is None:
            raise BackendError(
                f"JOC at {self._base} reports no version js7certctl can read.",
                hint="Check that the target's url is JOC's address.",
            )
        if version < MIN_VERSION:
            raise BackendError(
                f"JOC at {self._base} is version {self._foreign(str(text))}, but the "
                f"encryption-certificate API needs JOC {_version_text(MIN_VERSION)} or later.",
                hint="Upgrade JOC Cockpit, or manage this JOC's certificates in its UI.",
            )
        return version

    def _login(self) -> str:
        what = "to log in"
        response = self._send(
            "POST", "authentication/login", None, token=None, what=what, auth=self._authorization
        )
        if response.status_code in (401, 403):
            if self._credentials is not None:
                raise BackendError(
                    f"JOC at {self._base} refused the login of {self._account} (HTTP "
                    f"{response.status_code}): wrong account or password, or the account may "
                    "not log in.",
                    hint=f"Check {ENV_USER} and {ENV_PASSWORD} (or the file named by "
                    f"{ENV_PASSWORD_FILE}).",
                )
            raise BackendError(
                f"JOC at {self._base} refused the login with the client certificate (HTTP "
                f"{response.status_code}).",
                hint="Check that JOC trusts the certificate's CA and that its common name (CN) "
                "is a JOC account.",
            )
        data = self._checked(response, what, need=None)
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            token = response.headers.get("X-Access-Token", "")
        if not token:
            raise self._unexpected(what)
        with self._lock:
            self._secrets.add(token)
        return token

    def _logout(self, token: str) -> None:
        try:
            response = self._send(
                "POST",
                "authentication/logout",
                {},
                token=token,
                what="to log out",
                retry=False,
                timeout=min(self._timeout, _LOGOUT_TIMEOUT),
            )
        except BackendError as exc:
            self._notify(
                f"could not log out of JOC ({exc.message.rstrip('.')}); the session ends by "
                "itself after JOC's idle timeout."
            )
            return
        if response.status_code != 200:
            self._notify(
                f"JOC answered HTTP {response.status_code} to the logout; the session ends by "
                "itself after JOC's idle timeout."
            )

    # -- TLS --------------------------------------------------------------------------------

    def _ssl_context(
        self,
        ca_bundle: str | Path | None,
        client_cert: str | Path | None,
        client_key: str | Path | None,
        insecure: bool,
    ) -> ssl.SSLContext:
        if insecure:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif ca_bundle is not None:
            try:
                context = ssl.create_default_context(cafile=str(ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load the caBundle {ca_bundle} of target {self._name!r}: "
                    f"{_os_reason(exc)}.",
                    hint="Point caBundle at a PEM file holding the CA certificate(s) that "
                    "signed JOC's certificate.",
                ) from None
        else:
            context = httpx.create_ssl_context()
        if client_cert is not None and client_key is not None:
            try:
                context.load_cert_chain(
                    str(client_cert), str(client_key), password=_no_key_password
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load the client certificate {client_cert} with the key "
                    f"{client_key} of target {self._name!r}: {_os_reason(exc)}.",
                    hint="Give a PEM certificate and its unencrypted PEM private key (the key "
                    "file must not be password-protected).",
                ) from None
        return context

    # -- notices ----------------------------------------------------------------------------

    def _notify(self, message: str) -> None:
        if self._notify_callback is not None:
            self._notify_callback(message)

    def _warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        self._notify(message)


class _NoInventoryPermission(Exception):
    """``inventory/deployable`` answered 403 (internal; turned into a notice)."""


def _resource(folder: str, alias: str) -> str:
    return f"{folder.rstrip('/')}/{alias}"


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def _certificate_to_send(alias: str, certificate: str) -> str:
    """The text to store: exactly one certificate or public key block, never a private key."""
    if certs.contains_private_key(certificate):
        raise BackendError(
            f"refusing to send alias {alias!r}: its certificate text contains a private key; "
            "nothing was sent.",
            hint="Give only the certificate (or public key); the private key stays on the Agent.",
        )
    parsed, findings = certs.parse_certificate_text(certificate, source=f"alias {alias!r}")
    errors = [f for f in findings if f.is_error]
    if parsed is None or errors:
        reason = errors[0].message if errors else "it holds no certificate"
        raise BackendError(
            f"refusing to send {reason}; nothing was sent.",
            hint="Give exactly one PEM CERTIFICATE or PUBLIC KEY block.",
        )
    if findings:  # other PEM blocks besides the one: send only that one
        return parsed.pem
    return certificate


def from_connection(
    name: str,
    connection: Mapping[str, str],
    *,
    insecure: bool = False,
    deploy_timeout: float = 30.0,
    notify: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> JocKeystore:
    """A :class:`JocKeystore` from a target's recorded connection settings and the environment."""
    url = connection.get("url")
    if not url:
        raise ConfigError(
            f"target {name!r} has no url.",
            hint="Give the joc target a url such as https://joc.example.com:4443.",
        )
    client_cert, client_key = connection.get("clientCert"), connection.get("clientKey")
    credentials = None
    if client_cert is None and client_key is None:
        credentials = credentials_from_env(os.environ if env is None else env)
    return JocKeystore(
        url,
        name=name,
        credentials=credentials,
        ca_bundle=connection.get("caBundle"),
        client_cert=client_cert,
        client_key=client_key,
        insecure=insecure,
        deploy_timeout=deploy_timeout,
        notify=notify,
    )
