"""A JOC Cockpit emulator for the encryption-certificate API (``spec/joc-api.md``).

A real HTTP(S) server on 127.0.0.1 (standard library only) that keeps JOC's state and copies its
statuses, bodies, processing order, side effects and quirks. It is a test asset, not a product.

Typical use::

    with JocEmulator() as joc:                 # random free port, root/root with every permission
        joc.config.security_level = SecurityLevel.HIGH
        joc.add_fault("encipherment/certificate/store", status=503, nth=2)
        client = httpx.Client(base_url=joc.api_url)
        ...
        assert [c.endpoint for c in joc.calls][-1] == "authentication/logout"

``base_url`` (also ``url``) is ``http://127.0.0.1:PORT``, the form a js7certctl target's ``url``
takes; ``api_url`` is ``base_url + "/joc/api"``.

Processing order for every endpoint except login, logout and version: (1) session (440), (2) JSON
schema (420), (3) permission (403), then approval (433, JOC 2.8+, ``config.approval_required``),
(4) audit-log comment check (420 ``JOC-300``, store and import only), (5) the endpoint's logic.
Injected faults act before all of these (or after the logic, with ``after=True``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tests.joc_emulator.encrypt import EncryptError, js7_encrypt
from tests.joc_emulator.state import (
    API_PREFIX,
    PERM_CERTIFICATES_MANAGE,
    PERM_CERTIFICATES_VIEW,
    PERM_INVENTORY_VIEW,
    Call,
    EmulatorConfig,
    EmulatorState,
    Fault,
    FaultKind,
    SecurityLevel,
    Session,
    has_permission,
    job_resource_record,
    normalize_endpoint,
    timestamp,
)

LOG = logging.getLogger(__name__)

SESSION_EXPIRED_MESSAGE = "SessionNotExistException: Session has expired. New login is neccessary"
ACCESS_DENIED_MESSAGE = "Access denied"
SCHEMA_PREFIX = "com.sos.schema.exception.SOSJsonSchemaException: "
NEITHER_MESSAGE = (
    "com.sos.exception.SOSKeyException: The value is neither a X509 certificate nor a public key."
)
BUNDLE_MESSAGE = (
    "com.sos.exception.SOSKeyException: Certificate or key bundles are not allowed, only a single "
    "certificate or public key is required."
)
MISSING_COMMENT_MESSAGE = "JocMissingCommentException: missing comment"
APPROVAL_MESSAGE = "4-eyes principle: Operation needs approval process"
CODE_420 = "JOC-420"
CODE_MISSING_COMMENT = "JOC-300"

ENCIPHERMENT_MIN_VERSION = (2, 7, 1)
ASSIGNMENT_MANAGE_VERSION = (2, 8)
MAX_BODY = 16 * 1024 * 1024
AUDIT_TEXT_MAX = 255
AUDIT_TEXT_PATTERN = "^[^<>]*$"
OBJECT_TYPES = (
    "WORKFLOW",
    "JOBRESOURCE",
    "LOCK",
    "NOTICEBOARD",
    "FILEORDERSOURCE",
    "WORKINGDAYSCALENDAR",
    "NONWORKINGDAYSCALENDAR",
    "SCHEDULE",
    "INCLUDESCRIPT",
    "JOBTEMPLATE",
    "FOLDER",
)
REASONS = {420: "Invalid Request", 433: "Approval Required", 440: "Login Timeout"}

# JOC's whole certificate check: a regular expression, nothing is parsed.
_PEM_BLOCK = re.compile(r"-----BEGIN (CERTIFICATE|PUBLIC KEY)-----[\s\S]*?-----END \1-----")


def check_certificate(text: str) -> str | None:
    """JOC's 420 message for a certificate text, or None when it passes."""
    blocks = len(_PEM_BLOCK.findall(text))
    if blocks == 0:
        return NEITHER_MESSAGE
    if blocks > 1:
        return BUNDLE_MESSAGE
    return None


def normalize_folder(folder: str) -> str:
    """JOC's folder normalisation: leading ``/`` added, ``//`` collapsed, trailing ``/`` dropped."""
    norm = re.sub(r"//+", "/", "/" + folder.strip())
    return norm.rstrip("/") or "/"


def scrambled(keys: Iterable[str]) -> list[str]:
    """A deterministic order that is neither sorted nor insertion order (clients must sort)."""
    return sorted(keys, key=lambda k: hashlib.sha256(k.encode("utf-8")).digest())


# -- requests, responses and error bodies -----------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    client_cn: str | None = None  # CN of a verified TLS client certificate

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    account: str | None = None


class ApiError(Exception):
    """Carries the error response of a failed step."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, body: dict[str, Any], **headers: str) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(status, data, headers=dict(headers))


def ok_response() -> Response:
    now = timestamp()
    return json_response(200, {"deliveryDate": now, "surveyDate": now, "ok": True})


def error_420(message: str, code: str = CODE_420) -> Response:
    now = timestamp()
    body = {"deliveryDate": now, "surveyDate": now, "error": {"code": code, "message": message}}
    return json_response(420, body)


def schema_error(message: str) -> ApiError:
    return ApiError(error_420(SCHEMA_PREFIX + message))


def session_expired_response() -> Response:
    return json_response(
        440,
        {
            "isAuthenticated": False,
            "isPermitted": False,
            "hasRole": False,
            "message": SESSION_EXPIRED_MESSAGE,
        },
    )


def access_denied_response(
    status: int, session: Session | None = None, api_call: str | None = None
) -> Response:
    """401 (login) or 403 (permission), shaped like JOC's SOSAuthCurrentAccountAnswer.

    Like JOC, a 403 carries the caller's access token: clients must never print error bodies.
    """
    body: dict[str, Any] = {
        "accessToken": session.token if session else "",
        "account": session.account if session else "",
        "hasRole": session is not None,
        "isAuthenticated": session is not None,
        "isPermitted": False,
        "message": ACCESS_DENIED_MESSAGE,
    }
    if api_call is not None:
        body["apiCall"] = api_call
    return json_response(status, body)


def approval_response(
    config: EmulatorConfig, account: str, api_call: str, request_body: dict[str, Any]
) -> Response:
    body = {
        "deliveryDate": timestamp(),
        "requestor": account,
        "requestUrl": api_call,
        "requestBody": request_body,
        "message": APPROVAL_MESSAGE,
        "category": "CERTIFICATES",
        "approvers": list(config.approvers),
    }
    return json_response(433, body)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- schema checks -----------------------------------------------------------------------------


def _parse_json_object(req: Request) -> dict[str, Any]:
    if not req.body.strip():
        raise schema_error("$: null found, object expected")
    try:
        data = json.loads(req.body)
    except (ValueError, UnicodeDecodeError) as exc:
        # The position only: a body may hold secrets.
        where = (
            f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise ApiError(
            error_420(
                f"com.fasterxml.jackson.core.JsonParseException: malformed JSON {where}".strip()
            )
        ) from exc
    if not isinstance(data, dict):
        raise schema_error(f"$: {_json_type(data)} found, object expected")
    return data


def _string(data: dict[str, Any], name: str, *, required: bool, base: str = "$") -> str | None:
    if name not in data or (data[name] is None and not required):
        if required:
            raise schema_error(f"{base}.{name}: is missing but it is required")
        return None
    value = data[name]
    if not isinstance(value, str):
        raise schema_error(f"{base}.{name}: {_json_type(value)} found, string expected")
    return value


def _required_string(data: dict[str, Any], name: str) -> str:
    value = _string(data, name, required=True)
    assert value is not None
    return value


def _string_list(data: dict[str, Any], name: str) -> list[str] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise schema_error(f"$.{name}: {_json_type(value)} found, array expected")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise schema_error(f"$.{name}[{i}]: {_json_type(item)} found, string expected")
    return list(value)


@dataclass(frozen=True)
class AuditParams:
    comment: str | None = None
    time_spent: int | None = None
    ticket_link: str | None = None


def _audit_text(value: str, path: str) -> str:
    if len(value) > AUDIT_TEXT_MAX:
        raise schema_error(f"{path}: may only be {AUDIT_TEXT_MAX} characters long")
    if "<" in value or ">" in value:
        raise schema_error(f"{path}: does not match the regex pattern {AUDIT_TEXT_PATTERN}")
    return value


def _audit_params(data: dict[str, Any]) -> AuditParams:
    audit = data.get("auditLog")
    if audit is None:
        return AuditParams()
    if not isinstance(audit, dict):
        raise schema_error(f"$.auditLog: {_json_type(audit)} found, object expected")
    comment = _string(audit, "comment", required=False, base="$.auditLog")
    ticket = _string(audit, "ticketLink", required=False, base="$.auditLog")
    spent = audit.get("timeSpent")
    if spent is not None:
        if isinstance(spent, bool) or not isinstance(spent, int):
            raise schema_error(f"$.auditLog.timeSpent: {_json_type(spent)} found, integer expected")
        if spent < 0:
            raise schema_error("$.auditLog.timeSpent: must have a minimum value of 0")
    return AuditParams(
        comment=_audit_text(comment, "$.auditLog.comment") if comment is not None else None,
        time_spent=spent,
        ticket_link=_audit_text(ticket, "$.auditLog.ticketLink") if ticket is not None else None,
    )


def _one_of(data: dict[str, Any], names: tuple[str, ...]) -> str:
    present = [n for n in names if data.get(n) is not None]
    if len(present) != 1:
        raise schema_error(
            f"$: should be valid to one and only one schema, but {len(present)} are valid"
        )
    return present[0]


def _parse_multipart(req: Request) -> dict[str, tuple[bytes, str | None]]:
    """``{field name: (content, filename)}`` of a multipart/form-data body, byte-exact."""
    ctype = Message()
    ctype["content-type"] = req.header("content-type") or ""
    boundary = ctype.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise schema_error("$: multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    fields: dict[str, tuple[bytes, str | None]] = {}
    for raw in req.body.split(delimiter)[1:]:
        if raw.startswith(b"--"):
            break
        part = raw.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise schema_error("$: malformed multipart body")
        headers = Message()
        for line in head.decode("latin-1").split("\r\n"):
            header, _, value = line.partition(":")
            headers[header.strip()] = value.strip()
        field_name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        if isinstance(field_name, str):
            fields[field_name] = (content, filename if isinstance(filename, str) else None)
    return fields


# -- the API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    parse: Callable[[Request], dict[str, Any]]
    logic: Callable[[Session, dict[str, Any]], Response]
    permission: Callable[[tuple[int, ...]], str | None]
    audit: bool = False  # forced-comment check (store, import)
    min_version: tuple[int, ...] = ()
    multipart: bool = False


@dataclass
class _PendingDeploy:
    name: str
    generation: int
    token: str
    timer: threading.Timer


def _needs(permission: str | None) -> Callable[[tuple[int, ...]], str | None]:
    return lambda _version: permission


def _assignment_permission(version: tuple[int, ...]) -> str:
    if version >= ASSIGNMENT_MANAGE_VERSION:
        return PERM_CERTIFICATES_MANAGE
    return PERM_CERTIFICATES_VIEW


class JocApi:
    """The endpoints' logic over an :class:`EmulatorState`; HTTP-free."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self.config = config
        self.state = state
        self._pending: dict[str, _PendingDeploy] = {}
        self._generation: dict[str, int] = {}
        enc = ENCIPHERMENT_MIN_VERSION
        self.routes: dict[str, _Route] = {
            "joc/properties": _Route(_parse_json_object, self._properties, _needs(None)),
            "inventory/deployable": _Route(
                self._parse_deployable, self._deployable, _needs(PERM_INVENTORY_VIEW)
            ),
            "encipherment/certificate": _Route(
                self._parse_list, self._list, _needs(PERM_CERTIFICATES_VIEW), min_version=enc
            ),
            "encipherment/certificate/store": _Route(
                self._parse_store,
                self._store,
                _needs(PERM_CERTIFICATES_MANAGE),
                audit=True,
                min_version=enc,
            ),
            "encipherment/certificate/import": _Route(
                self._parse_import,
                self._store,
                _needs(PERM_CERTIFICATES_MANAGE),
                audit=True,
                min_version=enc,
                multipart=True,
            ),
            "encipherment/certificate/delete": _Route(
                self._parse_delete, self._delete, _needs(PERM_CERTIFICATES_MANAGE), min_version=enc
            ),
            "encipherment/assignment": _Route(
                self._parse_assignments,
                self._assignments,
                _needs(PERM_CERTIFICATES_VIEW),
                min_version=enc,
            ),
            "encipherment/assignment/add": _Route(
                self._parse_assignment_change,
                self._assignment_add,
                _assignment_permission,
                min_version=enc,
            ),
            "encipherment/assignment/remove": _Route(
                self._parse_assignment_change,
                self._assignment_remove,
                _assignment_permission,
                min_version=enc,
            ),
            "encipherment/encrypt": _Route(
                self._parse_encrypt, self._encrypt, _needs(None), min_version=enc
            ),
        }

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if not req.path.startswith(API_PREFIX):
            return Response(404, b"Not Found", "text/plain; charset=UTF-8")
        endpoint = req.path.removeprefix(API_PREFIX)
        if endpoint == "version":
            if req.method != "GET":
                return self._method_not_allowed("GET")
            return json_response(200, {"deliveryDate": timestamp(), "version": self.config.version})
        if endpoint in ("authentication/login", "authentication/logout"):
            if req.method != "POST":
                return self._method_not_allowed("POST")
            return self._login(req) if endpoint.endswith("login") else self._logout(req)
        route = self.routes.get(endpoint)
        version = self.config.version_tuple()
        if route is None or version < route.min_version:
            return Response(404, b"Not Found", "text/plain; charset=UTF-8")
        if req.method != "POST":
            return self._method_not_allowed("POST")
        if route.multipart and not (req.header("content-type") or "").lower().startswith(
            "multipart/form-data"
        ):
            return Response(415, b"Unsupported Media Type", "text/plain; charset=UTF-8")

        session = self._check_session(req)  # (1)
        if session is None:
            return session_expired_response()
        api_call = "./" + endpoint
        try:
            data = route.parse(req)  # (2)
            permission = route.permission(version)  # (3)
            account = self.config.accounts.get(session.account)
            granted = account.permissions if account is not None else frozenset()
            if permission is not None and not has_permission(granted, permission):
                raise ApiError(access_denied_response(403, session, api_call))
            if self.config.needs_approval(req.path):
                body = data.get("_raw", {})
                raise ApiError(approval_response(self.config, session.account, api_call, body))
            if route.audit and self.config.force_comments:  # (4)
                audit: AuditParams = data["audit"]
                if not audit.comment:
                    raise ApiError(error_420(MISSING_COMMENT_MESSAGE, CODE_MISSING_COMMENT))
            response = route.logic(session, data)  # (5)
        except ApiError as exc:
            response = exc.response
        response.account = session.account
        return response

    @staticmethod
    def _method_not_allowed(allowed: str) -> Response:
        return Response(
            405, b"Method Not Allowed", "text/plain; charset=UTF-8", headers={"Allow": allowed}
        )

    # -- sessions ----------------------------------------------------------------------------

    def _login(self, req: Request) -> Response:
        name: str | None = None
        via = "basic"
        auth = req.header("authorization")
        if auth is not None:
            scheme, _, encoded = auth.partition(" ")
            if scheme.lower() != "basic":
                return access_denied_response(401)
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return access_denied_response(401)
            user, sep, password = decoded.partition(":")
            account = self.config.accounts.get(user)
            if not sep or account is None:
                return access_denied_response(401)
            if not hmac.compare_digest(account.password.encode(), password.encode()):
                return access_denied_response(401)
            name = user
        elif req.client_cn is not None and req.client_cn in self.config.accounts:
            name, via = req.client_cn, "certificate"
        else:
            return access_denied_response(401)
        token = self.create_session(name, via=via)
        timeout_ms = str(int(self.config.idle_timeout * 1000))
        body = {
            "account": name,
            "accessToken": token,
            "hasRole": True,
            "isAuthenticated": True,
            "isPermitted": True,
            "role": "all",
            "sessionTimeout": int(timeout_ms),
            "identityService": "JOC-INITIAL" if via == "basic" else "CERTIFICATE",
        }
        response = json_response(
            200, body, **{"X-Access-Token": token, "X-JOC-Timeout": timeout_ms}
        )
        response.account = name
        return response

    def _logout(self, req: Request) -> Response:
        token = req.header("x-access-token")
        response = ok_response()
        if token is not None:
            with self.state.lock:
                session = self.state.sessions.pop(token, None)
            if session is not None:
                response.account = session.account
        return response

    def create_session(self, account: str, *, via: str = "basic") -> str:
        token = str(uuid.uuid4())
        now = time.monotonic()
        with self.state.lock:
            self.state.sessions[token] = Session(token, account, now, now, via)
        return token

    def _session_alive(self, token: str) -> bool:
        with self.state.lock:
            session = self.state.sessions.get(token)
            if session is None:
                return False
            if time.monotonic() - session.last_used > self.config.idle_timeout:
                del self.state.sessions[token]
                return False
            return True

    def _check_session(self, req: Request) -> Session | None:
        token = req.header("x-access-token")
        if not token:
            return None
        with self.state.lock:
            if not self._session_alive(token):
                return None
            session = self.state.sessions[token]
            session.last_used = time.monotonic()
            return session

    # -- parsers (step 2) ----------------------------------------------------------------------

    def _parse_list(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        return {"certAliases": _string_list(data, "certAliases"), "_raw": data}

    def _parse_store(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        return {
            "certAlias": _required_string(data, "certAlias"),
            "certificate": _required_string(data, "certificate"),
            "jobResourceFolder": _required_string(data, "jobResourceFolder"),
            "privateKeyPath": _string(data, "privateKeyPath", required=False),
            "audit": _audit_params(data),
            "request": "./encipherment/certificate/store",
            "_raw": data,
        }

    def _parse_import(self, req: Request) -> dict[str, Any]:
        fields = _parse_multipart(req)

        def text(name: str, *, required: bool = False) -> str | None:
            if name not in fields:
                if required:
                    raise schema_error(f"$.{name}: is missing but it is required")
                return None
            return fields[name][0].decode("utf-8", errors="replace")

        certificate = text("file", required=True)
        alias = text("certAlias", required=True)
        folder = text("jobResourceFolder", required=True)
        spent_text = text("timeSpent")
        spent: int | None = None
        if spent_text:
            if not re.fullmatch(r"-?\d+", spent_text.strip()):
                raise schema_error("$.auditLog.timeSpent: string found, integer expected")
            spent = int(spent_text)
            if spent < 0:
                raise schema_error("$.auditLog.timeSpent: must have a minimum value of 0")
        comment = text("comment")
        ticket = text("ticketLink")
        audit = AuditParams(
            comment=_audit_text(comment, "$.auditLog.comment") if comment is not None else None,
            time_spent=spent,
            ticket_link=_audit_text(ticket, "$.auditLog.ticketLink")
            if ticket is not None
            else None,
        )
        return {
            "certAlias": alias,
            "certificate": certificate,
            "jobResourceFolder": folder,
            "privateKeyPath": text("privateKeyPath") or None,
            "audit": audit,
            "request": "./encipherment/certificate/import",
        }

    def _parse_delete(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        return {
            "certAlias": _required_string(data, "certAlias"),
            "audit": _audit_params(data),
            "_raw": data,
        }

    def _parse_assignments(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        which = _one_of(data, ("agentIds", "certAliases"))
        return {
            "agentIds": _string_list(data, "agentIds"),
            "certAliases": _string_list(data, "certAliases"),
            "which": which,
            "_raw": data,
        }

    def _parse_assignment_change(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        return {
            "certAlias": _required_string(data, "certAlias"),
            "agentId": _required_string(data, "agentId"),
            "_raw": data,
        }

    def _parse_encrypt(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        plaintext = _required_string(data, "toEncrypt")
        which = _one_of(data, ("certAlias", "certificate"))
        return {"toEncrypt": plaintext, which: _required_string(data, which), "_raw": {}}

    def _parse_deployable(self, req: Request) -> dict[str, Any]:
        data = _parse_json_object(req)
        path = _required_string(data, "path")
        object_type = _required_string(data, "objectType")
        if object_type not in OBJECT_TYPES:
            raise schema_error(
                "$.objectType: does not have a value in the enumeration ["
                + ", ".join(OBJECT_TYPES)
                + "]"
            )
        return {"path": path, "objectType": object_type, "_raw": data}

    # -- logic (step 5) ----------------------------------------------------------------------

    def _properties(self, _session: Session, _data: dict[str, Any]) -> Response:
        return json_response(
            200,
            {
                "deliveryDate": timestamp(),
                "title": "JOC Cockpit emulator",
                "securityLevel": SecurityLevel(self.config.security_level).value,
                "forceCommentsForAuditLog": bool(self.config.force_comments),
                "comments": ["System maintenance", "Configuration change"],
                "defaultProfileAccount": "root",
                "apiVersion": self.config.version,
            },
        )

    def _list(self, _session: Session, data: dict[str, Any]) -> Response:
        wanted: list[str] | None = data["certAliases"]
        rows = []
        with self.state.lock:
            for alias in scrambled(self.state.certificates):
                if wanted and alias not in wanted:
                    continue
                record = self.state.certificates[alias]
                row = {"certAlias": alias, "certificate": record["certificate"]}
                if record["privateKeyPath"] is not None:
                    row["privateKeyPath"] = record["privateKeyPath"]
                rows.append(row)
        return json_response(200, {"deliveryDate": timestamp(), "certificates": rows})

    def _store(self, session: Session, data: dict[str, Any]) -> Response:
        certificate: str = data["certificate"]
        problem = check_certificate(certificate)
        if problem is not None:
            return error_420(problem)
        alias: str = data["certAlias"]
        private_key_path: str | None = data["privateKeyPath"]
        folder = normalize_folder(data["jobResourceFolder"])
        audit: AuditParams = data["audit"]
        with self.state.lock:
            self.state.certificates[alias] = {
                "certificate": certificate,
                "privateKeyPath": private_key_path,
            }
            # A Job Resource of that name anywhere in the inventory is updated and moved here.
            self.state.job_resources[alias] = job_resource_record(
                folder, certificate, private_key_path, deployed=False
            )
            self.state.audit_log.append(
                {
                    "id": len(self.state.audit_log) + 1,
                    "created": timestamp(),
                    "account": session.account,
                    "request": data["request"],
                    "certAlias": alias,
                    "comment": audit.comment,
                    "timeSpent": audit.time_spent,
                    "ticketLink": audit.ticket_link,
                }
            )
            self._schedule_deploy(alias, session.token)
            self.state.changed()
        return ok_response()

    def _delete(self, _session: Session, data: dict[str, Any]) -> Response:
        alias: str = data["certAlias"]
        with self.state.lock:
            removed = self.state.certificates.pop(alias, None)
            dropped = self.state.assignments.pop(alias, None)
            if removed is not None or dropped is not None:
                self.state.changed()
        # The Job Resource stays behind; no audit-log entry.
        return ok_response()

    def _assignments(self, _session: Session, data: dict[str, Any]) -> Response:
        # Known JOC bug: the certAliases filter is ignored and every mapping comes back.
        agent_filter: list[str] | None = data["agentIds"] if data["which"] == "agentIds" else None
        mappings = []
        with self.state.lock:
            for alias in scrambled(self.state.assignments):
                agents = self.state.assignments[alias]
                if agent_filter:
                    agents = agents & set(agent_filter)
                if agents:
                    mappings.append({"certAlias": alias, "agentId": scrambled(agents)})
        return json_response(200, {"deliveryDate": timestamp(), "mappings": mappings})

    def _assignment_add(self, _session: Session, data: dict[str, Any]) -> Response:
        with self.state.lock:
            agents = self.state.assignments.setdefault(data["certAlias"], set())
            if data["agentId"] not in agents:
                agents.add(data["agentId"])
                self.state.changed()
        return ok_response()

    def _assignment_remove(self, _session: Session, data: dict[str, Any]) -> Response:
        alias: str = data["certAlias"]
        with self.state.lock:
            agents = self.state.assignments.get(alias)
            if agents is not None and data["agentId"] in agents:
                agents.discard(data["agentId"])
                if not agents:
                    del self.state.assignments[alias]
                self.state.changed()
        return ok_response()

    def _encrypt(self, _session: Session, data: dict[str, Any]) -> Response:
        if "certAlias" in data:
            with self.state.lock:
                record = self.state.certificates.get(data["certAlias"])
            if record is None:
                return error_420(
                    "com.sos.joc.exceptions.JocObjectNotExistException: No certificate found "
                    "for the given alias."
                )
            certificate = record["certificate"]
        else:
            certificate = data["certificate"]
        try:
            value = js7_encrypt(data["toEncrypt"], certificate)
        except EncryptError as exc:
            return error_420(str(exc))
        return json_response(200, {"deliveryDate": timestamp(), "encryptedValue": value})

    def _deployable(self, _session: Session, data: dict[str, Any]) -> Response:
        path: str = data["path"]
        object_type: str = data["objectType"]
        found: tuple[str, dict[str, Any]] | None = None
        if object_type == "JOBRESOURCE":
            with self.state.lock:
                if "/" in path:
                    folder, _, name = path.rpartition("/")
                    candidate = self.state.job_resources.get(name)
                    if candidate is not None and candidate["folder"] == normalize_folder(folder):
                        found = (name, dict(candidate))
                elif path in self.state.job_resources:
                    found = (path, dict(self.state.job_resources[path]))
        if found is None:
            return error_420(
                f"com.sos.joc.exceptions.DBMissingDataException: Couldn't find the object "
                f"'{path}' of type {object_type}."
            )
        name, record = found
        folder = record["folder"]
        deployable = {
            "id": int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16),
            "folder": folder,
            "objectName": name,
            "objectType": object_type,
            "path": folder.rstrip("/") + "/" + name,
            "valid": True,
            "deployed": record["deployed"],
            "released": False,
            "deleted": False,
        }
        return json_response(200, {"deliveryDate": timestamp(), "deployable": deployable})

    # -- background deployment ----------------------------------------------------------------

    def _schedule_deploy(self, name: str, token: str) -> None:
        """After a store: deploy in the background at LOW/MEDIUM; never at HIGH. Lock held."""
        generation = self._generation.get(name, 0) + 1
        self._generation[name] = generation
        previous = self._pending.pop(name, None)
        if previous is not None:
            previous.timer.cancel()
        if SecurityLevel(self.config.security_level) is SecurityLevel.HIGH:
            return
        timer = threading.Timer(
            max(self.config.deploy_delay, 0.0), self._deploy, (name, generation)
        )
        timer.daemon = True
        self._pending[name] = _PendingDeploy(name, generation, token, timer)
        timer.start()

    def _deploy(self, name: str, generation: int) -> None:
        with self.state.lock:
            pending = self._pending.get(name)
            if pending is None or pending.generation != generation:
                return
            del self._pending[name]
            record = self.state.job_resources.get(name)
            if record is None:
                return
            ok = True
            reason = "deployed"
            if self.config.deploy_fails_without_session and not self._session_alive(pending.token):
                ok = False
                reason = "the session that stored the Job Resource has ended"
            else:
                record["deployed"] = True
            self.state.deployments.append(
                {
                    "name": name,
                    "folder": record["folder"],
                    "ok": ok,
                    "reason": reason,
                    "at": timestamp(),
                }
            )
            self.state.changed()

    def pending_deployments(self) -> list[str]:
        with self.state.lock:
            return sorted(self._pending)

    def deploy_now(self) -> int:
        """Run every pending background deployment at once; returns how many ran."""
        with self.state.lock:
            pending = list(self._pending.values())
        for item in pending:
            item.timer.cancel()
            self._deploy(item.name, item.generation)
        return len(pending)

    def close(self) -> None:
        with self.state.lock:
            for item in self._pending.values():
                item.timer.cancel()
            self._pending.clear()


# -- HTTP ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], emulator: JocEmulator, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.emulator = emulator
        self.ssl_context = ssl_context
        self._connections_lock = threading.Lock()
        self._connections: dict[int, socket.socket] = {}
        self._connection_count = 0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can hang offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def register(self, sock: socket.socket) -> int:
        with self._connections_lock:
            self._connection_count += 1
            self._connections[self._connection_count] = sock
            return self._connection_count

    def unregister(self, number: int) -> None:
        with self._connections_lock:
            self._connections.pop(number, None)

    def close_connections(self) -> None:
        with self._connections_lock:
            sockets = list(self._connections.values())
            self._connections.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up, failed TLS handshakes: expected in fault tests.
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "JOC-Cockpit-Emulator/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections end eventually
    server: _Server
    connection_number = 0

    def setup(self) -> None:
        # One small answer in two writes (head, body) would otherwise meet Nagle + delayed ACK.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.server.ssl_context
        if context is not None:
            self.request.settimeout(10)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.connection_number = self.server.register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.unregister(self.connection_number)
            # The server closes the socket it accepted, which wrap_socket detached: close ours.
            if isinstance(self.connection, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        emulator = self.server.emulator
        path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except ValueError:
            self._drop()
            return
        fault = emulator.take_fault(path)
        if fault is not None and not fault.after:
            emulator.sleep(fault.delay)
            if emulator.stopping:  # stopped during the delay: do not process any more
                self._drop()
                return
            if fault.kind is FaultKind.DROP:
                emulator.record(self.command, path, None, None, self.connection_number, "drop")
                self._drop()
                return
            if fault.kind is FaultKind.STATUS:
                response = fault_response(fault)
                emulator.record(
                    self.command, path, response.status, None, self.connection_number, "status"
                )
                self._send(response)
                return
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, path, headers, body, self._client_cn())
        response = emulator.api.handle(request)
        fault_name = str(fault.kind) if fault is not None else None
        if fault is not None and fault.after:
            emulator.sleep(fault.delay)
            if fault.kind is FaultKind.DROP:
                emulator.record(
                    self.command, path, None, response.account, self.connection_number, "drop"
                )
                self._drop()
                return
            if fault.kind is FaultKind.STATUS:
                account = response.account
                response = fault_response(fault)
                response.account = account
        emulator.record(
            self.command,
            path,
            response.status,
            response.account,
            self.connection_number,
            fault_name,
        )
        self._send(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        length = int(length_text)
        if not 0 <= length <= MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length)

    def _send(self, response: Response) -> None:
        self.send_response(response.status, REASONS.get(response.status))
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        """Close the connection without an answer (the client sees a disconnect)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _client_cn(self) -> str | None:
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        cert = self.connection.getpeercert()
        if not cert:
            return None
        subject = cert.get("subject", ())
        for rdn in subject if isinstance(subject, tuple) else ():
            for attribute in rdn:
                if isinstance(attribute, tuple) and attribute[0] == "commonName":
                    return str(attribute[1])
        return None


def fault_response(fault: Fault) -> Response:
    """The answer of a STATUS fault: its body, or JOC's body for that status."""
    status = fault.status
    body = fault.body
    if isinstance(body, dict):
        return json_response(status, body)
    if isinstance(body, str | bytes):
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            json.loads(data)
            content_type = "application/json"
        except ValueError:
            content_type = "text/plain; charset=UTF-8"
        return Response(status, data, content_type)
    if status == 440:
        return session_expired_response()
    if status in (401, 403):
        return access_denied_response(status)
    if status == 420:
        return error_420("com.sos.joc.exceptions.JocException: fault injected by the JOC emulator")
    now = timestamp()
    error = {"code": f"JOC-{status}", "message": "fault injected by the JOC emulator"}
    return json_response(status, {"deliveryDate": now, "surveyDate": now, "error": error})


class JocEmulator:
    """A running (after :meth:`start`) JOC Cockpit emulator; also a context manager.

    ``state_file`` persists certificates, assignments, Job Resources and the audit log (JSON,
    rewritten after every change, loaded at start). ``tls_cert``/``tls_key`` make it serve HTTPS;
    with ``tls_ca`` it also asks for client certificates signed by that CA (required with
    ``require_client_cert``) and logs a client in as its certificate's CN without a Basic header.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        tls_ca: str | Path | None = None,
        require_client_cert: bool = False,
    ) -> None:
        self.state = EmulatorState(Path(state_file) if state_file is not None else None)
        self.api = JocApi(config or EmulatorConfig(), self.state)
        self._host = host
        self._port = port
        self._ssl_context: ssl.SSLContext | None = None
        if tls_cert is not None:
            self._ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ssl_context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
            if tls_ca is not None:
                self._ssl_context.load_verify_locations(cafile=str(tls_ca))
                self._ssl_context.verify_mode = (
                    ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
                )
        self._faults: list[Fault] = []
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> JocEmulator:
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server((self._host, self._port), self, self._ssl_context)
        self._port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"joc-emulator-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, cancel pending deployments. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()  # ends injected delays
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self.api.close()
        self._server = self._thread = None

    def __enter__(self) -> JocEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS): what a js7certctl target's url holds."""
        return f"{self.scheme}://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """Same as :attr:`base_url`."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """``base_url + "/joc/api"``."""
        return self.base_url + "/joc/api"

    # -- configuration -----------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self.api.config

    @config.setter
    def config(self, config: EmulatorConfig) -> None:
        self.api.config = config

    # -- faults ------------------------------------------------------------------------------

    def add_fault(
        self,
        path: str,
        *,
        status: int | None = None,
        body: bytes | str | dict[str, Any] | None = None,
        drop: bool = False,
        delay: float | None = None,
        nth: int = 1,
        every: bool = False,
        prefix: bool = False,
        after: bool = False,
    ) -> Fault:
        """Inject a fault into calls to ``path`` and return it (``.seen``/``.fired`` count).

        ``path`` is below ``/joc/api/`` (``"encipherment/certificate/store"``) or a full path;
        with ``prefix`` it matches every path that starts with it (``"/"`` = every API call).
        Exactly one action:

        - ``status=S`` (with optional ``body``: dict -> JSON, str/bytes as is; default JOC's body
          for that status, e.g. the 440 session body): answer S without processing;
        - ``drop=True``: close the connection without an answer;
        - ``delay=D`` alone: wait D seconds, then process normally (to make clients time out;
          the call is still processed after the delay, as JOC would). With ``status`` or
          ``drop``, ``delay`` waits before that action.

        It fires on the ``nth`` matching call counted from now (1-based), or on every matching
        call with ``every``; a fault that fired is removed unless ``every``. At most one fault
        fires per call (the earliest added); one that had to wait fires on its next match.
        With ``after=True`` the call is processed first (its changes happen) and the fault then
        replaces the answer with S, drops it, or delays it.
        """
        if drop and status is not None:
            raise ValueError("a fault either answers a status or drops the connection, not both")
        if nth < 1:
            raise ValueError("nth counts from 1")
        if drop:
            kind = FaultKind.DROP
        elif status is not None:
            kind = FaultKind.STATUS
        elif delay is not None:
            kind = FaultKind.DELAY
        else:
            raise ValueError("give status=, drop=True or delay=")
        fault = Fault(
            path=normalize_endpoint(path),
            kind=kind,
            status=status if status is not None else 500,
            body=body,
            delay=delay or 0.0,
            nth=nth,
            every=every,
            prefix=prefix,
            after=after,
        )
        with self.state.lock:
            self._faults.append(fault)
        return fault

    @property
    def faults(self) -> list[Fault]:
        """The faults still armed."""
        with self.state.lock:
            return list(self._faults)

    def clear_faults(self) -> None:
        with self.state.lock:
            self._faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        """Count a call against every matching fault; the one that fires, if any."""
        with self.state.lock:
            chosen: Fault | None = None
            for fault in list(self._faults):
                if not fault.matches(path):
                    continue
                fault.seen += 1
                if chosen is None and (fault.every or fault.seen >= fault.nth):
                    chosen = fault
                    fault.fired += 1
                    if not fault.every:
                        self._faults.remove(fault)
            return chosen

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait, but no longer than until :meth:`stop`."""
        if seconds > 0:
            self._stop.wait(seconds)

    # -- calls and sessions --------------------------------------------------------------------

    def record(
        self,
        method: str,
        path: str,
        status: int | None,
        account: str | None,
        connection: int,
        fault: str | None = None,
    ) -> None:
        call = Call(method, path, status, account, datetime.now(UTC), connection, fault)
        with self.state.lock:
            self.state.calls.append(call)

    @property
    def calls(self) -> list[Call]:
        """Every call so far, oldest first (a copy)."""
        with self.state.lock:
            return list(self.state.calls)

    def calls_to(self, endpoint: str) -> list[Call]:
        """Calls to one path (below ``/joc/api/`` or full)."""
        path = normalize_endpoint(endpoint)
        return [c for c in self.calls if c.path == path]

    def clear_calls(self) -> None:
        with self.state.lock:
            self.state.calls.clear()

    def login(self, account: str = "root") -> str:
        """A session token for ``account`` without an HTTP call (for test set-up)."""
        return self.api.create_session(account)

    def expire_sessions(self, account: str | None = None) -> int:
        """End all sessions (or those of ``account``) now, as idle expiry would; how many."""
        with self.state.lock:
            tokens = [t for t, s in self.state.sessions.items() if account in (None, s.account)]
            for token in tokens:
                del self.state.sessions[token]
            return len(tokens)

    def expire_session(self, token: str) -> bool:
        """End one session now; False if it did not exist."""
        with self.state.lock:
            return self.state.sessions.pop(token, None) is not None

    # -- deployments -------------------------------------------------------------------------

    def pending_deployments(self) -> list[str]:
        """Job Resources whose background deployment has not run yet."""
        return self.api.pending_deployments()

    def deploy_now(self) -> int:
        """Run pending background deployments at once (no waiting in tests)."""
        return self.api.deploy_now()
