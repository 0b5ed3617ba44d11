"""The JOC emulator against spec/joc-api.md, exercised with httpx over real HTTP(S)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from tests.joc_emulator import (
    PERM_CERTIFICATES_VIEW,
    VIEW_PERMISSIONS,
    Account,
    EmulatorConfig,
    JocEmulator,
    SecurityLevel,
)
from tests.joc_emulator.fixture import joc_emulator_fixture, joc_emulator_process  # noqa: F401
from tests.joc_emulator.server import (
    BUNDLE_MESSAGE,
    MISSING_COMMENT_MESSAGE,
    NEITHER_MESSAGE,
    SCHEMA_PREFIX,
    SESSION_EXPIRED_MESSAGE,
)
from tests.tls_pki import make_pki

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
SESSION_BODY = {
    "isAuthenticated": False,
    "isPermitted": False,
    "hasRole": False,
    "message": SESSION_EXPIRED_MESSAGE,
}
TS_FORMAT = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$"


def pem(label: str, body: str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAc2Vjb25k") -> str:
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


CERT = pem("CERTIFICATE")
CERT2 = pem("CERTIFICATE", "MIIBzzzzgarbage+but/base64==")
PUBKEY = pem("PUBLIC KEY")


class Api:
    """A minimal JOC client for these tests: httpx, one connection pool, the token header."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, verify: ssl.SSLContext | None = None
    ) -> None:
        # Plain-HTTP clients skip loading the system CA bundle (50 ms each); TLS tests pass a
        # context that trusts the test CA.
        self.http = httpx.Client(base_url=url, timeout=timeout, verify=verify or False)
        self.token: str | None = None

    def login(self, account: str = "root", password: str = "root") -> httpx.Response:  # noqa: S107
        reply = self.http.post("/authentication/login", auth=(account, password))
        if reply.status_code == 200:
            self.token = reply.json()["accessToken"]
        return reply

    def post(
        self,
        endpoint: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        files: dict[str, tuple[str, bytes]] | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"X-Access-Token": self.token} if self.token else {}
        if content is not None or files is not None:
            return self.http.post(
                "/" + endpoint, content=content, files=files, data=data, headers=headers
            )
        return self.http.post("/" + endpoint, json={} if body is None else body, headers=headers)

    def store(
        self,
        alias: str,
        certificate: str = CERT,
        folder: str = "/Encryption",
        private_key_path: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "certAlias": alias,
            "certificate": certificate,
            "jobResourceFolder": folder,
            **extra,
        }
        if private_key_path is not None:
            body["privateKeyPath"] = private_key_path
        return self.post("encipherment/certificate/store", body)

    def certificates(self, aliases: list[str] | None = None) -> list[dict[str, str]]:
        reply = self.post("encipherment/certificate", {"certAliases": aliases or []})
        assert reply.status_code == 200, reply.text
        rows: list[dict[str, str]] = reply.json()["certificates"]
        return rows

    def deployable(self, path: str) -> httpx.Response:
        return self.post("inventory/deployable", {"path": path, "objectType": "JOBRESOURCE"})

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., Api]]:
    """Make clients that are all closed after the test."""
    clients: list[Api] = []

    def make(url: str, **kwargs: Any) -> Api:
        client = Api(url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(joc_emulator: JocEmulator, connect: Callable[..., Api]) -> Api:
    client = connect(joc_emulator.api_url)
    assert client.login().status_code == 200
    return client


def error_of(reply: httpx.Response) -> tuple[int, str, str]:
    body = reply.json()
    return reply.status_code, body["error"]["code"], body["error"]["message"]


# -- authentication and sessions ----------------------------------------------------------------


def test_version_needs_no_login(joc_emulator: JocEmulator) -> None:
    joc_emulator.config.version = "2.7.3"
    reply = httpx.get(joc_emulator.api_url + "/version")
    assert reply.status_code == 200
    assert reply.json()["version"] == "2.7.3"
    assert joc_emulator.base_url == f"http://127.0.0.1:{joc_emulator.port}"
    assert joc_emulator.url == joc_emulator.base_url


def test_login_returns_token_in_body_and_header_and_logout_ends_session(
    joc_emulator: JocEmulator, connect: Callable[..., Api]
) -> None:
    client = connect(joc_emulator.api_url)
    reply = client.login()
    assert reply.status_code == 200
    assert reply.json()["accessToken"] == reply.headers["X-Access-Token"]
    assert reply.headers["X-JOC-Timeout"] == "1800000"
    assert client.post("encipherment/certificate").status_code == 200

    logout = client.post("authentication/logout")
    assert logout.status_code == 200
    assert logout.json()["ok"] is True
    assert joc_emulator.state.sessions == {}
    after = client.post("encipherment/certificate")
    assert after.status_code == 440
    assert after.json() == SESSION_BODY
    # Logout of an unknown token is still a 200.
    assert client.post("authentication/logout").status_code == 200
    logouts = joc_emulator.calls_to("authentication/logout")
    assert [(c.status, c.account) for c in logouts] == [(200, "root"), (200, None)]


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"root:wrong").decode(),
        "Basic " + base64.b64encode(b"nobody:root").decode(),
        "Basic " + base64.b64encode(b"root").decode(),
        "Basic %%%",
        "Bearer abc",
        None,
    ],
)
def test_bad_credentials_are_401(joc_emulator: JocEmulator, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    reply = httpx.post(joc_emulator.api_url + "/authentication/login", headers=headers)
    assert reply.status_code == 401
    body = reply.json()
    assert (body["isAuthenticated"], body["isPermitted"], body["message"]) == (
        False,
        False,
        "Access denied",
    )
    assert "X-Access-Token" not in reply.headers
    assert joc_emulator.state.sessions == {}


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_missing_or_unknown_token_is_440(joc_emulator: JocEmulator, token: str | None) -> None:
    headers = {"X-Access-Token": token} if token is not None else {}
    reply = httpx.post(joc_emulator.api_url + "/encipherment/certificate", json={}, headers=headers)
    assert reply.status_code == 440
    assert reply.json() == SESSION_BODY


def test_idle_sessions_expire(joc_emulator: JocEmulator, api: Api) -> None:
    assert api.post("encipherment/certificate").status_code == 200
    # Age the session beyond the idle timeout instead of sleeping.
    with joc_emulator.state.lock:
        for session in joc_emulator.state.sessions.values():
            session.last_used -= joc_emulator.config.idle_timeout + 1
    assert api.post("encipherment/certificate").status_code == 440
    assert joc_emulator.state.sessions == {}


def test_use_keeps_a_session_alive_and_expire_sessions_ends_it(
    joc_emulator: JocEmulator, api: Api
) -> None:
    with joc_emulator.state.lock:
        for session in joc_emulator.state.sessions.values():
            session.last_used -= joc_emulator.config.idle_timeout - 60
    assert api.post("encipherment/certificate").status_code == 200  # refreshes last_used
    with joc_emulator.state.lock:
        for session in joc_emulator.state.sessions.values():
            session.last_used -= 120
    assert api.post("encipherment/certificate").status_code == 200
    assert joc_emulator.expire_sessions() == 1
    assert api.post("encipherment/certificate").status_code == 440
    assert api.login().status_code == 200
    assert api.post("encipherment/certificate").status_code == 200
    assert api.token is not None
    assert joc_emulator.expire_session(api.token)
    assert not joc_emulator.expire_session(api.token)
    assert api.post("encipherment/certificate").status_code == 440
    token = joc_emulator.login("root")  # a session without HTTP, for test set-up
    api.token = token
    assert api.post("encipherment/certificate").status_code == 200


def test_properties_follow_the_config(joc_emulator: JocEmulator, api: Api) -> None:
    body = api.post("joc/properties").json()
    assert (body["securityLevel"], body["forceCommentsForAuditLog"]) == ("MEDIUM", False)
    joc_emulator.config.security_level = SecurityLevel.HIGH
    joc_emulator.config.force_comments = True
    body = api.post("joc/properties").json()
    assert (body["securityLevel"], body["forceCommentsForAuditLog"]) == ("HIGH", True)


def test_unknown_paths_methods_and_old_versions(joc_emulator: JocEmulator, api: Api) -> None:
    assert api.post("encipherment/nothing").status_code == 404
    assert api.http.get("/encipherment/certificate").status_code == 405
    assert api.http.post("/version").status_code == 405
    assert httpx.get(joc_emulator.base_url + "/other").status_code == 404
    joc_emulator.config.version = "2.7.0"  # before the encipherment API
    assert api.post("encipherment/certificate").status_code == 404
    assert api.post("joc/properties").status_code == 200


# -- permissions and processing order -----------------------------------------------------------


@pytest.fixture
def viewer(joc_emulator: JocEmulator, connect: Callable[..., Api]) -> Api:
    joc_emulator.config.accounts["viewer"] = Account("pw", VIEW_PERMISSIONS)
    client = connect(joc_emulator.api_url)
    assert client.login("viewer", "pw").status_code == 200
    return client


def test_view_permission_lists_but_cannot_write(viewer: Api) -> None:
    assert viewer.post("encipherment/certificate").status_code == 200
    assert viewer.post("encipherment/assignment", {"agentIds": []}).status_code == 200
    assert viewer.deployable("nothing").status_code == 420  # allowed, but there is no such object
    pair = {"certAlias": "a", "agentId": "agent"}
    for endpoint, body in [
        (
            "encipherment/certificate/store",
            {"certAlias": "a", "certificate": CERT, "jobResourceFolder": "/E"},
        ),
        ("encipherment/certificate/delete", {"certAlias": "a"}),
        ("encipherment/assignment/add", pair),
        ("encipherment/assignment/remove", pair),
    ]:
        reply = viewer.post(endpoint, body)
        assert reply.status_code == 403, endpoint
        denied = reply.json()
        assert (denied["isAuthenticated"], denied["isPermitted"]) == (True, False)
        assert denied["message"] == "Access denied"
    files = {"file": ("a.crt", CERT.encode())}
    form = {"certAlias": "a", "jobResourceFolder": "/E"}
    assert viewer.post("encipherment/certificate/import", files=files, data=form).status_code == 403


def test_assignment_changes_need_manage_only_from_2_8(
    joc_emulator: JocEmulator, viewer: Api
) -> None:
    pair = {"certAlias": "a", "agentId": "agent"}
    assert viewer.post("encipherment/assignment/add", pair).status_code == 403
    joc_emulator.config.version = "2.7.1"
    assert viewer.post("encipherment/assignment/add", pair).status_code == 200
    assert joc_emulator.state.assignments == {"a": {"agent"}}


def test_no_permission_at_all(joc_emulator: JocEmulator, connect: Callable[..., Api]) -> None:
    joc_emulator.config.accounts["nobody"] = Account("pw", [])
    client = connect(joc_emulator.api_url)
    assert client.login("nobody", "pw").status_code == 200
    assert client.post("encipherment/certificate").status_code == 403
    assert client.deployable("x").status_code == 403
    # Permissions are a tree: a parent grants its children.
    joc_emulator.config.accounts["nobody"].permissions = frozenset(
        {PERM_CERTIFICATES_VIEW.rsplit(":", 1)[0]}
    )
    assert client.post("encipherment/certificate").status_code == 200
    assert client.store("a").status_code == 200


def test_a_bad_session_beats_a_bad_body(joc_emulator: JocEmulator) -> None:
    reply = httpx.post(
        joc_emulator.api_url + "/encipherment/certificate/store",
        content=b"{not json",
        headers={"X-Access-Token": "stale"},
    )
    assert reply.status_code == 440


def test_a_schema_error_beats_a_permission_error(viewer: Api) -> None:
    code, error, message = error_of(
        viewer.post("encipherment/certificate/store", {"certificate": CERT})
    )
    assert (code, error) == (420, "JOC-420")
    assert message == SCHEMA_PREFIX + "$.certAlias: is missing but it is required"


def test_a_permission_error_beats_the_audit_log_check(
    joc_emulator: JocEmulator, viewer: Api
) -> None:
    joc_emulator.config.force_comments = True
    assert viewer.store("a").status_code == 403


def test_the_audit_log_check_beats_the_logic(joc_emulator: JocEmulator, api: Api) -> None:
    joc_emulator.config.force_comments = True
    reply = api.store("a", certificate="not a certificate")
    assert error_of(reply) == (420, "JOC-300", MISSING_COMMENT_MESSAGE)


def test_approval_comes_after_permission_and_before_the_audit_check(
    joc_emulator: JocEmulator, api: Api, viewer: Api
) -> None:
    joc_emulator.config.approval_required = {"encipherment/certificate/store"}
    joc_emulator.config.force_comments = True
    assert viewer.store("a").status_code == 403
    reply = api.store("a")
    assert reply.status_code == 433
    assert reply.json()["message"] == "4-eyes principle: Operation needs approval process"
    assert reply.json()["requestBody"]["certAlias"] == "a"
    assert joc_emulator.state.certificates == {}
    joc_emulator.config.version = "2.7.1"  # no approvals before 2.8
    assert api.store("a", auditLog={"comment": "ok"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"certAlias": 1, "certificate": CERT, "jobResourceFolder": "/E"},
            "$.certAlias: integer found, string expected",
        ),
        (
            {"certAlias": "a", "jobResourceFolder": "/E"},
            "$.certificate: is missing but it is required",
        ),
        (
            {"certAlias": "a", "certificate": CERT},
            "$.jobResourceFolder: is missing but it is required",
        ),
        (
            {"certAlias": "a", "certificate": CERT, "jobResourceFolder": "/E", "privateKeyPath": 5},
            "$.privateKeyPath: integer found, string expected",
        ),
        ([], "$: array found, object expected"),
    ],
)
def test_store_schema_errors(api: Api, body: Any, message: str) -> None:
    assert error_of(api.post("encipherment/certificate/store", body)) == (
        420,
        "JOC-420",
        SCHEMA_PREFIX + message,
    )


def test_malformed_json_is_420_and_unknown_properties_are_ignored(api: Api) -> None:
    reply = api.post("encipherment/certificate/store", content=b"{oops")
    assert reply.status_code == 420
    assert reply.json()["error"]["code"] == "JOC-420"
    assert api.store("a", color="blue").status_code == 200


# -- store, list, delete ------------------------------------------------------------------------


def test_ok_body_and_timestamps(api: Api) -> None:
    body = api.store("a").json()
    assert set(body) == {"deliveryDate", "surveyDate", "ok"}
    assert body["ok"] is True
    for key in ("deliveryDate", "surveyDate"):
        assert dt.datetime.fromisoformat(body[key]).utcoffset() == dt.timedelta(0)
        assert len(body[key]) == len("2024-07-01T12:00:00.000+00:00")


def test_store_is_an_upsert_and_omitting_the_key_path_clears_it(
    joc_emulator: JocEmulator, api: Api
) -> None:
    weird = "-----BEGIN CERTIFICATE-----\r\nMIIB  \r\n-----END CERTIFICATE-----\r\n\r\n  "
    assert api.store("a", certificate=CERT, private_key_path="/keys/a.key").status_code == 200
    assert api.certificates() == [
        {"certAlias": "a", "certificate": CERT, "privateKeyPath": "/keys/a.key"}
    ]
    assert api.store("a", certificate=weird).status_code == 200
    # Exactly as stored, byte for byte; a null privateKeyPath is omitted.
    assert api.certificates() == [{"certAlias": "a", "certificate": weird}]
    assert joc_emulator.state.certificates["a"] == {"certificate": weird, "privateKeyPath": None}
    # No rename: a new alias is a second entry.
    assert api.store("b", certificate=weird).status_code == 200
    assert sorted(r["certAlias"] for r in api.certificates()) == ["a", "b"]


def test_store_writes_and_moves_the_job_resource(joc_emulator: JocEmulator, api: Api) -> None:
    assert api.store("a", folder="/A", private_key_path="/k").status_code == 200
    resource = joc_emulator.state.job_resources["a"]
    assert resource["folder"] == "/A"
    assert resource["arguments"] == {
        "encipherment_certificate": CERT,
        "encipherment_private_key_path": "/k",
    }
    assert set(resource["env"]) == {"ENCIPHERMENT_CERTIFICATE", "ENCIPHERMENT_PRIVATE_KEY_PATH"}

    assert api.store("a", folder="B/Sub/").status_code == 200  # JOC normalises folders
    assert list(joc_emulator.state.job_resources) == ["a"]
    resource = joc_emulator.state.job_resources["a"]
    assert resource["folder"] == "/B/Sub"
    assert "encipherment_private_key_path" not in resource["arguments"]
    deployable = api.deployable("a").json()["deployable"]
    assert (deployable["folder"], deployable["objectName"]) == ("/B/Sub", "a")
    assert api.deployable("/B/Sub/a").status_code == 200
    assert api.deployable("/A/a").status_code == 420
    assert (
        api.post("inventory/deployable", {"path": "a", "objectType": "WORKFLOW"}).status_code == 420
    )
    bad_type = api.post("inventory/deployable", {"path": "a", "objectType": "NOPE"})
    assert error_of(bad_type)[2].startswith(SCHEMA_PREFIX + "$.objectType:")


def test_delete_is_idempotent_drops_assignments_and_leaves_the_job_resource(
    joc_emulator: JocEmulator, api: Api
) -> None:
    assert api.store("a", auditLog={"comment": "create"}).status_code == 200
    assert (
        api.post("encipherment/assignment/add", {"certAlias": "a", "agentId": "ag"}).status_code
        == 200
    )
    for _ in range(2):
        reply = api.post(
            "encipherment/certificate/delete", {"certAlias": "a", "auditLog": {"comment": "rm"}}
        )
        assert reply.status_code == 200
    assert api.post("encipherment/certificate/delete", {"certAlias": "never"}).status_code == 200
    assert api.certificates() == []
    assert api.post("encipherment/assignment", {"agentIds": []}).json()["mappings"] == []
    assert "a" in joc_emulator.state.job_resources
    assert api.deployable("a").status_code == 200
    # Only store and import write audit-log entries.
    assert [e["comment"] for e in joc_emulator.state.audit_log] == ["create"]


def test_delete_requires_an_alias(api: Api) -> None:
    assert error_of(api.post("encipherment/certificate/delete", {}))[2] == (
        SCHEMA_PREFIX + "$.certAlias: is missing but it is required"
    )


@pytest.mark.parametrize(
    ("certificate", "expected"),
    [
        (pem("CERTIFICATE", "!!! not base64 at all !!!"), None),
        (PUBKEY, None),
        (pem("PRIVATE KEY", "c2VjcmV0") + CERT, None),
        ("hello", NEITHER_MESSAGE),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n", NEITHER_MESSAGE),
        (pem("RSA PRIVATE KEY"), NEITHER_MESSAGE),
        (CERT + PUBKEY, BUNDLE_MESSAGE),
        (CERT + CERT2, BUNDLE_MESSAGE),
    ],
)
def test_certificate_check_is_a_regular_expression(
    api: Api, certificate: str, expected: str | None
) -> None:
    reply = api.store("a", certificate=certificate)
    if expected is None:
        assert reply.status_code == 200
        # Stored whole, even a private key in front of the certificate.
        assert api.certificates() == [{"certAlias": "a", "certificate": certificate}]
    else:
        assert error_of(reply) == (420, "JOC-420", expected)
        assert api.certificates() == []


def test_list_order_is_unspecified_but_stable_and_filters(api: Api) -> None:
    aliases = [f"alias-{i:02d}" for i in range(12)]
    for alias in aliases:
        assert api.store(alias).status_code == 200
    listed = [r["certAlias"] for r in api.certificates()]
    assert sorted(listed) == aliases
    assert listed != aliases  # neither sorted nor insertion order: clients must sort
    assert [r["certAlias"] for r in api.certificates()] == listed
    assert [r["certAlias"] for r in api.certificates(["alias-03", "missing"])] == ["alias-03"]
    reply = api.post("encipherment/certificate", {"certAliases": "alias-03"})
    assert error_of(reply)[2] == SCHEMA_PREFIX + "$.certAliases: string found, array expected"


# -- assignments --------------------------------------------------------------------------------


def test_assignments_are_idempotent_and_the_alias_filter_is_ignored(
    joc_emulator: JocEmulator, api: Api
) -> None:
    for alias, agent in [
        ("a", "agent-1"),
        ("a", "agent-2"),
        ("a", "agent-2"),
        ("ghost", "agent-2"),
    ]:
        reply = api.post("encipherment/assignment/add", {"certAlias": alias, "agentId": agent})
        assert reply.status_code == 200  # neither alias nor Agent is checked
    assert joc_emulator.state.assignments == {"a": {"agent-1", "agent-2"}, "ghost": {"agent-2"}}

    def mappings(body: dict[str, Any]) -> dict[str, list[str]]:
        reply = api.post("encipherment/assignment", body)
        assert reply.status_code == 200, reply.text
        rows = reply.json()["mappings"]
        assert all(isinstance(row["agentId"], list) for row in rows)
        return {row["certAlias"]: sorted(row["agentId"]) for row in rows}

    everything = {"a": ["agent-1", "agent-2"], "ghost": ["agent-2"]}
    assert mappings({"certAliases": ["a"]}) == everything  # the JOC bug
    assert mappings({"agentIds": []}) == everything
    assert mappings({"agentIds": ["agent-1"]}) == {"a": ["agent-1"]}
    assert mappings({"agentIds": ["agent-2", "agent-9"]}) == {
        "a": ["agent-2"],
        "ghost": ["agent-2"],
    }

    for agent in ["agent-1", "agent-1", "agent-9"]:
        reply = api.post("encipherment/assignment/remove", {"certAlias": "a", "agentId": agent})
        assert reply.status_code == 200
    assert (
        api.post(
            "encipherment/assignment/remove", {"certAlias": "ghost", "agentId": "agent-2"}
        ).status_code
        == 200
    )
    assert mappings({"agentIds": []}) == {"a": ["agent-2"]}


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("encipherment/assignment", {}),
        ("encipherment/assignment", {"agentIds": [], "certAliases": []}),
        ("encipherment/assignment", {"agentIds": [1]}),
        ("encipherment/assignment/add", {"certAlias": "a", "agentId": ["x"]}),
        ("encipherment/assignment/add", {"certAlias": "a"}),
        ("encipherment/assignment/remove", {"agentId": "x"}),
    ],
)
def test_assignment_schema_errors(api: Api, endpoint: str, body: dict[str, Any]) -> None:
    code, error, message = error_of(api.post(endpoint, body))
    assert (code, error) == (420, "JOC-420")
    assert message.startswith(SCHEMA_PREFIX)


# -- deployment -----------------------------------------------------------------------------------


def deployed(api: Api, alias: str) -> bool:
    reply = api.deployable(alias)
    assert reply.status_code == 200, reply.text
    return bool(reply.json()["deployable"]["deployed"])


def test_deployment_happens_in_the_background_at_medium(
    joc_emulator: JocEmulator, api: Api
) -> None:
    joc_emulator.config.deploy_delay = 0.05
    assert api.store("a").status_code == 200
    deadline = time.monotonic() + 10
    while not deployed(api, "a"):
        assert time.monotonic() < deadline, "the background deployment never happened"
        time.sleep(0.02)
    assert joc_emulator.state.deployments[-1]["ok"] is True


def test_deployed_flips_after_the_delay_and_a_new_store_undeploys(
    joc_emulator: JocEmulator, api: Api
) -> None:
    joc_emulator.config.deploy_delay = 3600  # run it by hand instead of waiting
    joc_emulator.config.security_level = SecurityLevel.LOW
    assert api.store("a").status_code == 200
    assert not deployed(api, "a")
    assert joc_emulator.pending_deployments() == ["a"]
    assert joc_emulator.deploy_now() == 1
    assert deployed(api, "a")
    assert api.store("a", folder="/Other").status_code == 200
    assert not deployed(api, "a")
    joc_emulator.deploy_now()
    assert deployed(api, "a")


def test_nothing_is_deployed_at_high(joc_emulator: JocEmulator, api: Api) -> None:
    joc_emulator.config.security_level = SecurityLevel.HIGH
    joc_emulator.config.deploy_delay = 0
    assert api.store("a").status_code == 200
    assert joc_emulator.pending_deployments() == []
    assert joc_emulator.deploy_now() == 0
    assert not deployed(api, "a")
    assert joc_emulator.state.deployments == []


def test_logging_out_at_once_makes_the_deployment_fail_silently(
    joc_emulator: JocEmulator, api: Api
) -> None:
    joc_emulator.config.deploy_delay = 3600
    assert api.store("a").status_code == 200
    assert api.post("authentication/logout").status_code == 200
    joc_emulator.deploy_now()
    assert api.login().status_code == 200
    assert not deployed(api, "a")
    assert joc_emulator.state.deployments[-1]["ok"] is False


# -- audit log ------------------------------------------------------------------------------------


def test_forced_comments(joc_emulator: JocEmulator, api: Api) -> None:
    joc_emulator.config.force_comments = True
    assert error_of(api.store("a")) == (420, "JOC-300", MISSING_COMMENT_MESSAGE)
    assert error_of(api.store("a", auditLog={"comment": ""})) == (
        420,
        "JOC-300",
        MISSING_COMMENT_MESSAGE,
    )
    files = {"file": ("a.crt", CERT.encode())}
    form = {"certAlias": "a", "jobResourceFolder": "/E"}
    reply = api.post("encipherment/certificate/import", files=files, data=form)
    assert error_of(reply) == (420, "JOC-300", MISSING_COMMENT_MESSAGE)
    assert joc_emulator.state.certificates == {}

    audit = {"comment": "rotate", "timeSpent": 5, "ticketLink": "https://t/1"}
    assert api.store("a", auditLog=audit).status_code == 200
    form["comment"] = "imported"
    assert api.post("encipherment/certificate/import", files=files, data=form).status_code == 200
    entries = joc_emulator.state.audit_log
    assert [(e["request"], e["comment"], e["timeSpent"], e["ticketLink"]) for e in entries] == [
        ("./encipherment/certificate/store", "rotate", 5, "https://t/1"),
        ("./encipherment/certificate/import", "imported", None, None),
    ]
    # Delete and assignments need no comment.
    assert api.post("encipherment/certificate/delete", {"certAlias": "a"}).status_code == 200
    assert (
        api.post("encipherment/assignment/add", {"certAlias": "a", "agentId": "x"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("audit", "message"),
    [
        ({"comment": "x" * 256}, "$.auditLog.comment: may only be 255 characters long"),
        ({"comment": "a <b> c"}, "$.auditLog.comment: does not match the regex pattern ^[^<>]*$"),
        (
            {"ticketLink": "https://t/>"},
            "$.auditLog.ticketLink: does not match the regex pattern ^[^<>]*$",
        ),
        ({"ticketLink": "t" * 256}, "$.auditLog.ticketLink: may only be 255 characters long"),
        ({"timeSpent": -1}, "$.auditLog.timeSpent: must have a minimum value of 0"),
        ({"timeSpent": "5"}, "$.auditLog.timeSpent: string found, integer expected"),
        ({"timeSpent": 1.5}, "$.auditLog.timeSpent: number found, integer expected"),
        ("comment", "$.auditLog: string found, object expected"),
    ],
)
def test_audit_log_limits(api: Api, audit: Any, message: str) -> None:
    assert error_of(api.store("a", auditLog=audit)) == (420, "JOC-420", SCHEMA_PREFIX + message)
    reply = api.post("encipherment/certificate/delete", {"certAlias": "a", "auditLog": audit})
    assert reply.status_code == 420


def test_audit_log_at_the_limits_is_accepted(joc_emulator: JocEmulator, api: Api) -> None:
    audit = {"comment": "c" * 255, "ticketLink": "t" * 255, "timeSpent": 0}
    assert api.store("a", auditLog=audit).status_code == 200
    assert joc_emulator.state.audit_log[0]["comment"] == "c" * 255


# -- import ---------------------------------------------------------------------------------------


def test_import_stores_the_uploaded_file(joc_emulator: JocEmulator, api: Api) -> None:
    content = "-----BEGIN PUBLIC KEY-----\r\nMFkw\r\n-----END PUBLIC KEY-----\r\n"
    files = {"file": ("a.pem", content.encode())}
    form = {"certAlias": "a", "jobResourceFolder": "/Imp", "privateKeyPath": "/k", "timeSpent": "3"}
    assert api.post("encipherment/certificate/import", files=files, data=form).status_code == 200
    assert api.certificates() == [
        {"certAlias": "a", "certificate": content, "privateKeyPath": "/k"}
    ]
    assert joc_emulator.state.job_resources["a"]["folder"] == "/Imp"
    assert joc_emulator.state.audit_log[0]["timeSpent"] == 3

    bundle = {"file": ("b.pem", (CERT + CERT2).encode())}
    reply = api.post("encipherment/certificate/import", files=bundle, data=form)
    assert error_of(reply) == (420, "JOC-420", BUNDLE_MESSAGE)
    missing = api.post("encipherment/certificate/import", files={"x": ("x", b"")}, data=form)
    assert error_of(missing)[2] == SCHEMA_PREFIX + "$.file: is missing but it is required"
    negative = api.post(
        "encipherment/certificate/import", files=files, data={**form, "timeSpent": "-2"}
    )
    assert negative.status_code == 420
    assert api.post("encipherment/certificate/import", {"certAlias": "a"}).status_code == 415


# -- encrypt --------------------------------------------------------------------------------------


def js7_decrypt(value: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """spec/js7-encryption.md, decryption side (checked against JS7's own vectors below)."""
    wrapped, iv, ciphertext = (
        base64.b64decode(f) for f in value.removeprefix("enc:").split(" ")[:3]
    )
    if isinstance(key, rsa.RSAPrivateKey):
        one_time_key = key.decrypt(wrapped, asym_padding.PKCS1v15())
    else:
        size = (key.curve.key_size + 7) // 8
        v, c, tag = (
            wrapped[: 1 + 2 * size],
            wrapped[1 + 2 * size : 17 + 2 * size],
            wrapped[17 + 2 * size :],
        )
        peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, v)
        k = X963KDF(hashes.SHA1(), 48, None).derive(v + key.exchange(ec.ECDH(), peer))  # noqa: S303
        assert hmac.compare_digest(tag, hmac.new(k[:32], c + bytes(8), hashlib.sha1).digest())
        one_time_key = bytes(a ^ b for a, b in zip(c, k[32:48], strict=True))
    decryptor = Cipher(algorithms.AES(one_time_key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = (
        unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
    )
    return plain.decode("utf-8")


def load_key(name: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((VECTORS / name).read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason="../shared/vectors is missing")


@needs_vectors
@pytest.mark.parametrize(
    ("key_file", "cert_file"), [("rsa2048.key", "rsa2048.crt"), ("ecp256.key", "ecp256.crt")]
)
def test_encrypt_produces_values_that_decrypt(api: Api, key_file: str, cert_file: str) -> None:
    key = load_key(key_file)
    vectors = json.loads((VECTORS / "vectors.json").read_text(encoding="utf-8"))["values"]
    for vector in (v for v in vectors if v["key"] == key_file):
        assert js7_decrypt(vector["value"], key) == vector["plaintext"]  # the decryptor is right

    certificate = (VECTORS / cert_file).read_text(encoding="ascii")
    assert api.store("enc", certificate=certificate).status_code == 200
    secret = "Grüße \U0001f510 " + "x" * 40
    by_alias = api.post("encipherment/encrypt", {"toEncrypt": secret, "certAlias": "enc"})
    by_cert = api.post("encipherment/encrypt", {"toEncrypt": "", "certificate": certificate})
    for reply, plain in [(by_alias, secret), (by_cert, "")]:
        assert reply.status_code == 200, reply.text
        value = reply.json()["encryptedValue"]
        assert value.startswith("enc:")
        assert js7_decrypt(value, key) == plain


def test_encrypt_refusals(api: Api) -> None:
    assert api.store("pub", certificate=PUBKEY).status_code == 200
    for body in [
        {"toEncrypt": "s", "certAlias": "pub"},  # JOC encrypts for certificates only
        {"toEncrypt": "s", "certAlias": "unknown"},
        {"toEncrypt": "s", "certificate": CERT},  # garbage inside the block
        {"toEncrypt": "s"},
        {"toEncrypt": "s", "certAlias": "pub", "certificate": CERT},
        {"certAlias": "pub"},
    ]:
        reply = api.post("encipherment/encrypt", body)
        assert reply.status_code == 420, body
        assert "s" not in reply.json()["error"]["message"].split()  # the secret is not echoed


# -- faults ---------------------------------------------------------------------------------------


def test_status_fault_on_the_nth_call_is_consumed(joc_emulator: JocEmulator, api: Api) -> None:
    fault = joc_emulator.add_fault("encipherment/certificate", status=503, nth=2)
    assert api.post("encipherment/certificate").status_code == 200
    failed = api.post("encipherment/certificate")
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "JOC-503"
    assert api.post("encipherment/certificate").status_code == 200
    assert (fault.seen, fault.fired, joc_emulator.faults) == (2, 1, [])
    statuses = [(c.status, c.fault) for c in joc_emulator.calls_to("encipherment/certificate")]
    assert statuses == [(200, None), (503, "status"), (200, None)]


def test_status_fault_bodies(joc_emulator: JocEmulator, api: Api) -> None:
    joc_emulator.add_fault("encipherment/certificate", status=440)
    joc_emulator.add_fault(
        "encipherment/certificate", status=502, body="<html>Bad Gateway</html>", nth=2
    )
    joc_emulator.add_fault(
        "encipherment/certificate", status=420, body={"error": {"code": "JOC-999"}}, nth=3
    )
    first = api.post("encipherment/certificate")
    assert (first.status_code, first.json()) == (440, SESSION_BODY)
    second = api.post("encipherment/certificate")
    assert (second.status_code, second.text) == (502, "<html>Bad Gateway</html>")
    assert second.headers["content-type"].startswith("text/plain")
    third = api.post("encipherment/certificate")
    assert (third.status_code, third.json()) == (420, {"error": {"code": "JOC-999"}})
    assert api.post("encipherment/certificate").status_code == 200
    assert joc_emulator.state.sessions  # a 440 fault does not end the session


def test_every_fault_with_a_prefix(joc_emulator: JocEmulator, api: Api) -> None:
    fault = joc_emulator.add_fault("encipherment/", prefix=True, every=True, status=500)
    for _ in range(3):
        assert api.store("a").status_code == 500
    assert api.post("encipherment/assignment", {"agentIds": []}).status_code == 500
    assert api.post("joc/properties").status_code == 200
    assert joc_emulator.state.certificates == {}
    assert fault.fired == 4
    joc_emulator.clear_faults()
    assert api.store("a").status_code == 200


def test_drop_fault_closes_the_connection_without_an_answer(
    joc_emulator: JocEmulator, api: Api
) -> None:
    joc_emulator.add_fault("encipherment/certificate/store", drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        api.store("a")
    assert joc_emulator.state.certificates == {}  # never processed
    assert api.store("a").status_code == 200  # consumed; the client reconnects
    calls = joc_emulator.calls_to("encipherment/certificate/store")
    assert [(c.status, c.fault) for c in calls] == [(None, "drop"), (200, None)]
    assert calls[0].connection != calls[1].connection


def test_drop_after_processing_loses_only_the_answer(joc_emulator: JocEmulator, api: Api) -> None:
    joc_emulator.add_fault("encipherment/certificate/store", drop=True, after=True)
    with pytest.raises(httpx.RemoteProtocolError):
        api.store("a")
    assert "a" in joc_emulator.state.certificates


def test_status_after_processing(joc_emulator: JocEmulator, api: Api) -> None:
    joc_emulator.add_fault("encipherment/assignment/add", status=504, after=True)
    reply = api.post("encipherment/assignment/add", {"certAlias": "a", "agentId": "x"})
    assert reply.status_code == 504
    assert joc_emulator.state.assignments == {"a": {"x"}}
    assert joc_emulator.calls[-1].account == "root"


def test_delay_fault_makes_the_client_time_out(
    joc_emulator: JocEmulator, connect: Callable[..., Api]
) -> None:
    client = connect(joc_emulator.api_url, timeout=0.3)
    assert client.login().status_code == 200
    joc_emulator.add_fault("encipherment/certificate", delay=30)
    with pytest.raises(httpx.ReadTimeout):
        client.post("encipherment/certificate")
    assert client.post("encipherment/certificate").status_code == 200


def test_add_fault_rejects_nonsense(joc_emulator: JocEmulator) -> None:
    with pytest.raises(ValueError, match="either"):
        joc_emulator.add_fault("x", status=500, drop=True)
    with pytest.raises(ValueError, match="give"):
        joc_emulator.add_fault("x")
    with pytest.raises(ValueError, match="from 1"):
        joc_emulator.add_fault("x", status=500, nth=0)


# -- transport ------------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(
    joc_emulator: JocEmulator, api: Api, connect: Callable[..., Api]
) -> None:
    for _ in range(3):
        assert api.post("encipherment/certificate").status_code == 200
    connections = {c.connection for c in joc_emulator.calls}
    assert len(connections) == 1  # login and three calls
    other = connect(joc_emulator.api_url)
    assert other.login().status_code == 200
    assert joc_emulator.calls[-1].connection not in connections


def test_tls_and_client_certificate_login(tmp_path: Path, connect: Callable[..., Api]) -> None:
    pki = make_pki(tmp_path, clients=("root", "stranger"))
    ca_path, files = pki.ca, pki.clients
    with JocEmulator(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_ca=ca_path) as joc:
        assert joc.base_url.startswith("https://127.0.0.1:")

        def client(cert: str | None) -> Api:
            context = ssl.create_default_context(cafile=str(ca_path))
            if cert is not None:
                context.load_cert_chain(*files[cert])
            return connect(joc.api_url, verify=context)

        # Basic login over verified TLS, no client certificate.
        plain = client(None)
        assert plain.login().status_code == 200
        assert plain.post("encipherment/certificate").status_code == 200
        assert plain.http.post("/authentication/login").status_code == 401  # no Basic, no cert
        # Mutual TLS: the certificate's CN is the account, no Basic header.
        mutual = client("root")
        reply = mutual.http.post("/authentication/login")
        assert reply.status_code == 200
        assert reply.json()["account"] == "root"
        # A verified certificate of an unknown account is refused.
        assert client("stranger").http.post("/authentication/login").status_code == 401
        # Without the CA, the client refuses the server.
        with pytest.raises(httpx.ConnectError):
            httpx.get(joc.api_url + "/version")


# -- persistence and the command line -------------------------------------------------------------


def test_state_survives_a_killed_emulator_process(
    tmp_path: Path, connect: Callable[..., Api]
) -> None:
    state_file = tmp_path / "joc.json"
    args = ("--user", "alice:secret", "--security-level", "HIGH")
    with joc_emulator_process(state_file, *args) as joc:
        client = connect(joc.api_url)
        assert client.login("root", "root").status_code == 401  # --user replaces root
        assert client.login("alice", "secret").status_code == 200
        assert client.post("joc/properties").json()["securityLevel"] == "HIGH"
        assert (
            client.store("a", private_key_path="/k", auditLog={"comment": "c"}).status_code == 200
        )
        assert (
            client.post(
                "encipherment/assignment/add", {"certAlias": "a", "agentId": "ag"}
            ).status_code
            == 200
        )
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        assert saved["certificates"]["a"]["privateKeyPath"] == "/k"

        port, pid = joc.port, joc.pid
        joc.kill()
        joc.start()
        assert (joc.port, joc.pid != pid) == (port, True)

        client = connect(joc.api_url)
        client.token = "stale"
        assert client.post("encipherment/certificate").status_code == 440  # sessions are gone
        assert client.login("alice", "secret").status_code == 200
        assert client.certificates() == [
            {"certAlias": "a", "certificate": CERT, "privateKeyPath": "/k"}
        ]
        mappings = client.post("encipherment/assignment", {"agentIds": []}).json()["mappings"]
        assert mappings == [{"certAlias": "a", "agentId": ["ag"]}]
        assert client.deployable("a").json()["deployable"]["folder"] == "/Encryption"
    assert not joc.running


def test_seeded_state_and_snapshot(tmp_path: Path, connect: Callable[..., Api]) -> None:
    state_file = tmp_path / "seed.json"
    with JocEmulator(EmulatorConfig(version="2.9.0"), state_file=state_file) as joc:
        joc.state.put_certificate("old", CERT, "/k", "/Legacy")
        joc.state.assign("old", "agent-1")
        client = connect(joc.api_url)
        assert client.login().status_code == 200
        assert client.certificates() == [
            {"certAlias": "old", "certificate": CERT, "privateKeyPath": "/k"}
        ]
        assert client.deployable("old").json()["deployable"]["deployed"] is True
        snapshot = joc.state.snapshot()
        assert snapshot["assignments"] == {"old": ["agent-1"]}
        assert snapshot["sessions"] == ["root"]
    with JocEmulator(state_file=state_file) as again:
        assert again.state.assignments == {"old": {"agent-1"}}
        assert again.state.sessions == {}
