"""The JOC Cockpit backend against the JOC emulator over real HTTP(S): the backend contract plus
what only JOC has (sessions, versions, permissions, approvals, forced comments, TLS, retries,
deployment, secrets)."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from js7certctl.errors import BackendError, ConfigError, Js7CertCtlError
from js7certctl.keystore.base import Keystore
from js7certctl.keystore.factory import BackendOptions, open_keystore
from js7certctl.keystore.joc import (
    PERMISSION_INVENTORY_VIEW,
    PERMISSION_MANAGE,
    Credentials,
    JocKeystore,
    credentials_from_env,
    parse_version,
)
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity
from tests import certgen
from tests.joc_emulator import (
    VIEW_PERMISSIONS,
    Account,
    JocEmulator,
    SecurityLevel,
)
from tests.joc_emulator.fixture import joc_emulator_fixture  # noqa: F401
from tests.keystore_contract import AUDIT, FOLDER, KeystoreContract, make_cert
from tests.tls_pki import Pki, make_pki

ROOT = Credentials("root", "root")
SECRET_PASSWORD = "pw-Zq8!very-secret-4711"
STORE = "encipherment/certificate/store"


@pytest.fixture
def joc(joc_emulator: JocEmulator) -> JocEmulator:
    """The emulator with deployments that take no noticeable time."""
    joc_emulator.config.deploy_delay = 0.01
    return joc_emulator


@dataclass
class Opener:
    """Opens JocKeystores on an emulator, collects their notices, closes them after the test."""

    emulator: JocEmulator
    all_notices: list[str]
    opened: list[JocKeystore]

    @property
    def notices(self) -> list[str]:
        """The notices, without the warning about plain http (the emulator speaks http)."""
        return [n for n in self.all_notices if "is plain http://" not in n]

    def __call__(self, url: str | None = None, **kwargs: Any) -> JocKeystore:
        kwargs.setdefault("credentials", ROOT)
        kwargs.setdefault("backoff", 0.01)
        kwargs.setdefault("notify", self.all_notices.append)
        keystore = JocKeystore(url or self.emulator.base_url, **kwargs)
        self.opened.append(keystore)
        return keystore


@pytest.fixture
def connect(joc: JocEmulator) -> Iterator[Opener]:
    opener = Opener(joc, [], [])
    yield opener
    for keystore in opener.opened:
        keystore.close()


def endpoints(joc: JocEmulator) -> list[str]:
    return [call.endpoint for call in joc.calls]


# -- the contract -----------------------------------------------------------------------------


class TestJocKeystoreContract(KeystoreContract):
    @pytest.fixture
    def keystore(self, connect: Opener) -> JocKeystore:
        return connect(name="prod")

    @pytest.fixture
    def expected_identity(self, joc: JocEmulator) -> TargetIdentity:
        return TargetIdentity("prod", "joc", joc.base_url)


# -- sessions ---------------------------------------------------------------------------------


def test_one_session_per_run_version_first_and_logout_on_close(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()
    assert joc.calls == []  # nothing happens before the first use

    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    keystore.list_entries()
    keystore.add_assignment("agent-a", "agent-1")
    keystore.list_entries()
    keystore.close()
    keystore.close()

    calls = endpoints(joc)
    assert calls[:2] == ["version", "authentication/login"]
    assert calls.count("authentication/login") == 1
    assert calls.count("authentication/logout") == 1
    assert calls[-1] == "authentication/logout"
    assert joc.state.sessions == {}
    assert len({call.connection for call in joc.calls}) <= 8  # connections are reused
    assert {call.account for call in joc.calls[1:]} == {"root"}


def test_a_url_with_joc_api_or_a_slash_works_and_the_identity_keeps_it(
    joc: JocEmulator, connect: Opener
) -> None:
    for url in (joc.base_url + "/", joc.api_url, joc.api_url + "/"):
        keystore = connect(url, name="prod")
        assert keystore.list_entries() == []
        assert keystore.identity == TargetIdentity("prod", "joc", url)
        assert keystore.url == joc.base_url


@pytest.mark.parametrize("version", ["2.7.0", "2.6.5", "1.13.7"])
def test_a_joc_older_than_2_7_1_is_refused_naming_its_version(
    joc: JocEmulator, connect: Opener, version: str
) -> None:
    joc.config.version = version

    with pytest.raises(BackendError) as caught:
        connect().list_entries()

    assert f"is version {version}, but the encryption-certificate API needs JOC 2.7.1" in str(
        caught.value
    )
    assert endpoints(joc) == ["version"]  # no login


@pytest.mark.parametrize("version", ["2.7.1", "2.7.1-SNAPSHOT", "2.9.0", "3.0"])
def test_joc_2_7_1_and_later_are_accepted(joc: JocEmulator, connect: Opener, version: str) -> None:
    joc.config.version = version
    assert connect().list_entries() == []


def test_parse_version() -> None:
    assert parse_version("2.8.1") == (2, 8, 1)
    assert parse_version("2.7.1-SNAPSHOT") == (2, 7, 1)
    assert parse_version(" 2.10 ") == (2, 10)
    assert parse_version("2.7-rc1.5") == (2, 7)
    assert parse_version("unknown") is None
    assert parse_version("") is None


def test_bad_credentials_are_one_clear_error(joc: JocEmulator, connect: Opener) -> None:
    with pytest.raises(BackendError) as caught:
        connect(credentials=Credentials("root", SECRET_PASSWORD)).list_entries()

    message = str(caught.value)
    assert "refused the login of account 'root' (HTTP 401)" in message
    assert "JS7_USER and JS7_PASSWORD" in message
    assert SECRET_PASSWORD not in message
    assert endpoints(joc) == ["version", "authentication/login"]  # a 401 is not repeated


def test_session_expiry_mid_run_logs_in_again_and_repeats_the_call_once(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()
    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    assert joc.expire_sessions() == 1

    keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)
    joc.expire_sessions()
    keystore.add_assignment("agent-b", "agent-1")

    store_statuses = [c.status for c in joc.calls_to(STORE)]
    assert store_statuses == [200, 440, 200]
    assert endpoints(joc).count("authentication/login") == 3
    assert [e.alias for e in keystore.list_entries()] == ["agent-a", "agent-b"]
    assert [entry["certAlias"] for entry in joc.state.audit_log] == ["agent-a", "agent-b"]
    assert joc.state.assignments == {"agent-b": {"agent-1"}}


def test_a_session_that_ends_again_right_after_a_new_login_is_an_error(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()
    keystore.list_entries()
    joc.add_fault(STORE, status=440, every=True)

    with pytest.raises(BackendError, match="ended the session again right after a new login"):
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    assert [c.status for c in joc.calls_to(STORE)] == [440, 440]
    assert endpoints(joc).count("authentication/login") == 2


def test_a_401_mid_run_is_treated_like_an_expired_session(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()
    keystore.list_entries()
    joc.add_fault("encipherment/certificate", status=401)

    assert keystore.list_entries() == []
    assert endpoints(joc).count("authentication/login") == 2


# -- credentials --------------------------------------------------------------------------------


def test_credentials_from_the_environment(tmp_path: Path) -> None:
    assert credentials_from_env({"JS7_USER": "ci", "JS7_PASSWORD": "pw"}) == Credentials("ci", "pw")
    password_file = tmp_path / "password"
    password_file.write_text(SECRET_PASSWORD + "\r\n", encoding="utf-8")
    got = credentials_from_env({"JS7_USER": "ci", "JS7_PASSWORD_FILE": str(password_file)})
    assert got == Credentials("ci", SECRET_PASSWORD)
    password_file.write_text(" spaced \n\n", encoding="utf-8")  # only one line break goes
    got = credentials_from_env({"JS7_USER": "ci", "JS7_PASSWORD_FILE": str(password_file)})
    assert got.password == " spaced \n"
    assert SECRET_PASSWORD not in repr(Credentials("ci", SECRET_PASSWORD))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "set JS7_USER and JS7_PASSWORD (or JS7_PASSWORD_FILE)"),
        ({"JS7_USER": "ci"}, "set JS7_PASSWORD (or JS7_PASSWORD_FILE)"),
        ({"JS7_PASSWORD": "pw"}, "set JS7_USER."),
        ({"JS7_USER": "ci", "JS7_PASSWORD": ""}, "set JS7_PASSWORD (or JS7_PASSWORD_FILE)"),
        (
            {"JS7_USER": "ci", "JS7_PASSWORD": "pw", "JS7_PASSWORD_FILE": "/x"},
            "both JS7_PASSWORD and JS7_PASSWORD_FILE are set",
        ),
        ({"JS7_USER": "ci", "JS7_PASSWORD_FILE": "/nonexistent/pw"}, "cannot read the JOC"),
    ],
)
def test_missing_or_unusable_credentials_name_the_variables(
    env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        credentials_from_env(env)
    assert expected in str(caught.value)
    assert "pw" not in caught.value.message.replace("JS7_PASSWORD", "").replace("/pw", "")


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "pw"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        credentials_from_env({"JS7_USER": "ci", "JS7_PASSWORD_FILE": str(empty)})


def test_open_keystore_builds_the_joc_backend_from_the_environment(
    joc: JocEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = BackendOptions(deploy_timeout=1.0)
    with pytest.raises(ConfigError, match="JS7_USER"):
        open_keystore("prod", "joc", {"url": joc.base_url}, options)
    monkeypatch.setenv("JS7_USER", "root")
    monkeypatch.setenv("JS7_PASSWORD", "root")

    keystore = open_keystore("prod", "joc", {"url": joc.base_url}, options)
    try:
        assert isinstance(keystore, JocKeystore)
        assert isinstance(keystore, Keystore)
        assert keystore.identity == TargetIdentity("prod", "joc", joc.base_url)
        assert keystore.list_entries() == []
    finally:
        keystore.close()
    assert endpoints(joc)[-1] == "authentication/logout"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ci:secret@joc.example.com:4443", "holds a user name or password"),
        ("ftp://joc.example.com", "must be JOC's address"),
        ("joc.example.com:4443", "must be JOC's address"),
        ("https://joc.example.com:port", "must be JOC's address"),
        ("https://:secret@joc.example.com", "holds a user name or password"),
    ],
)
def test_unusable_urls_are_refused(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JocKeystore(url, credentials=ROOT)
    assert expected in str(caught.value)
    assert "secret" not in str(caught.value)


# -- reading ----------------------------------------------------------------------------------


def test_list_sorts_filters_assignments_and_reads_folders(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.state.put_certificate("zeta", make_cert(0), "/z.key", "/Legacy/Old")
    joc.state.put_certificate("alpha", make_cert(1), None, None)  # no Job Resource
    joc.state.put_certificate("Mid", make_cert(2), None, "/Encryption")
    joc.state.assign("zeta", "agent-2", "agent-1")
    joc.state.assign("ghost", "agent-9")  # assignments of an alias that is not stored

    entries = connect().list_entries()

    assert entries == [
        LiveEntry("Mid", make_cert(2), None, "/Encryption", ()),
        LiveEntry("alpha", make_cert(1), None, None, ()),
        LiveEntry("zeta", make_cert(0), "/z.key", "/Legacy/Old", ("agent-1", "agent-2")),
    ]
    assert [c.status for c in joc.calls_to("encipherment/assignment")] == [200]


def test_folders_are_read_in_parallel_but_bounded(joc: JocEmulator, connect: Opener) -> None:
    for index in range(12):
        joc.state.put_certificate(f"agent-{index:02}", make_cert(index % 3), None, f"/F{index}")

    entries = connect(max_workers=3).list_entries()

    assert [e.job_resource_folder for e in entries] == [f"/F{i}" for i in range(12)]
    assert len(joc.calls_to("inventory/deployable")) == 12
    assert len({call.connection for call in joc.calls}) <= 3


def test_without_inventory_permission_folders_are_not_compared(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.config.accounts["auditor"] = Account("pw", ["sos:products:joc:administration"])
    joc.state.put_certificate("agent-a", make_cert(0), None, "/Encryption")
    joc.state.put_certificate("agent-b", make_cert(1), None, "/Encryption")
    keystore = connect(credentials=Credentials("auditor", "pw"))

    entries = keystore.list_entries()
    keystore.list_entries()

    assert [(e.alias, e.job_resource_folder) for e in entries] == [
        ("agent-a", None),
        ("agent-b", None),
    ]
    assert len(connect.notices) == 1
    assert PERMISSION_INVENTORY_VIEW in connect.notices[0]
    assert "not compared" in connect.notices[0]


# -- writing ----------------------------------------------------------------------------------


def test_store_sends_the_full_entry_with_the_audit_log(joc: JocEmulator, connect: Opener) -> None:
    keystore = connect()
    audit = AuditLog(comment="rotate agent-a", ticket_link="https://ci/1", time_spent=3)
    keystore.store("agent-a", make_cert(0), "/a.key", "/Security", audit)

    assert joc.state.certificates["agent-a"] == {
        "certificate": make_cert(0),
        "privateKeyPath": "/a.key",
    }
    resource = joc.state.job_resources["agent-a"]
    assert resource["folder"] == "/Security"
    assert resource["arguments"]["encipherment_private_key_path"] == "/a.key"
    entry = joc.state.audit_log[-1]
    assert (entry["comment"], entry["ticketLink"], entry["timeSpent"]) == (
        "rotate agent-a",
        "https://ci/1",
        3,
    )


def test_a_text_with_a_private_key_is_never_sent(joc: JocEmulator, connect: Opener) -> None:
    keystore = connect()
    key_pem = certgen.private_key_pem(certgen.ec_key("P-256"))
    rsa_pem = certgen.private_key_pem(certgen.rsa_key(), fmt="traditional")

    for text in (key_pem + make_cert(0), make_cert(0) + rsa_pem, key_pem):
        with pytest.raises(BackendError) as caught:
            keystore.store("agent-a", text, None, FOLDER, AUDIT)
        assert "contains a private key; nothing was sent" in str(caught.value)
        assert key_pem.splitlines()[1] not in str(caught.value)

    assert joc.calls_to(STORE) == []
    assert joc.state.certificates == {}


def test_only_the_certificate_block_is_sent_when_other_pem_blocks_surround_it(
    joc: JocEmulator, connect: Opener
) -> None:
    params = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    connect().store("agent-a", params + make_cert(0), None, FOLDER, AUDIT)

    assert joc.state.certificates["agent-a"]["certificate"] == make_cert(0)


def test_a_certificate_with_garbage_base64_is_refused_before_sending(
    joc: JocEmulator, connect: Opener
) -> None:
    garbage = (
        "-----BEGIN CERTIFICATE-----\nMIIBzzzzgarbage+but/base64==\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(BackendError, match="refusing to send alias 'agent-a'"):
        connect().store("agent-a", garbage, None, FOLDER, AUDIT)
    assert joc.calls_to(STORE) == []


def test_forced_comments_fail_before_the_first_write(joc: JocEmulator, connect: Opener) -> None:
    joc.config.force_comments = True
    keystore = connect()
    for audit in (AuditLog(), AuditLog(comment=""), AuditLog(comment=None, ticket_link="x")):
        with pytest.raises(BackendError) as caught, keystore.writer(audit):
            keystore.store("agent-a", make_cert(0), None, FOLDER, audit)  # pragma: no cover
        assert "requires an audit-log comment" in str(caught.value)
        assert "nothing was changed" in str(caught.value)
    assert joc.calls_to(STORE) == []

    audit = AuditLog(comment="js7certctl apply 1234abcd")
    with keystore.writer(audit):
        keystore.store("agent-a", make_cert(0), None, FOLDER, audit)
    assert joc.state.audit_log[-1]["comment"] == "js7certctl apply 1234abcd"


def test_a_store_without_comment_outside_a_writer_gets_joc_s_refusal_mapped(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.config.force_comments = True
    with pytest.raises(BackendError) as caught:
        connect().store("agent-a", make_cert(0), None, FOLDER, AuditLog())
    assert "JOC refused to store alias 'agent-a': it requires an audit-log comment" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("audit", "expected"),
    [
        (AuditLog(comment="x" * 256), "longer than 255 characters"),
        (AuditLog(comment="ok", ticket_link="<script>"), "contains '<' or '>'"),
        (AuditLog(comment="ok", time_spent=-1), "time spent is negative"),
    ],
)
def test_audit_logs_joc_would_refuse_fail_before_the_first_write(
    joc: JocEmulator, connect: Opener, audit: AuditLog, expected: str
) -> None:
    keystore = connect()
    with pytest.raises(BackendError, match=expected), keystore.writer(audit):
        keystore.delete("agent-a", audit)  # pragma: no cover
    assert joc.calls_to("encipherment/certificate/delete") == []


# -- error mapping ----------------------------------------------------------------------------


def test_403_names_the_missing_permission_and_never_the_token(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.config.accounts["viewer"] = Account("pw", VIEW_PERMISSIONS)
    keystore = connect(credentials=Credentials("viewer", "pw"))
    keystore.list_entries()
    token = keystore._token  # the session's token, to look for it below
    assert token

    with pytest.raises(BackendError) as caught:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    message = str(caught.value)
    assert f"account 'viewer' lacks the permission {PERMISSION_MANAGE} (HTTP 403)" in message
    assert token not in message
    assert token not in "".join(traceback.format_exception(caught.value))


def test_420_shows_joc_s_message_only(joc: JocEmulator, connect: Opener) -> None:
    keystore = connect()
    keystore.list_entries()
    body = {
        "error": {"code": "JOC-420", "message": "com.sos.joc.Exception: the folder is locked"},
        "accessToken": "should-never-show",
    }
    joc.add_fault(STORE, status=420, body=body)

    with pytest.raises(BackendError) as caught:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    assert str(caught.value).startswith(
        "JOC refused to store alias 'agent-a': com.sos.joc.Exception: the folder is locked."
    )
    assert "should-never-show" not in str(caught.value)


def test_433_says_approval_is_required_and_is_not_repeated(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.config.approval_required = {STORE}
    with pytest.raises(BackendError) as caught:
        connect().store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    assert "needs the approval of a second person (four-eyes principle, HTTP 433)" in str(
        caught.value
    )
    assert [c.status for c in joc.calls_to(STORE)] == [433]
    assert joc.state.certificates == {}


def test_500_is_reported_with_joc_s_message_and_not_repeated(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.add_fault(STORE, status=500)
    with pytest.raises(BackendError) as caught:
        connect().store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    assert "JOC failed to store alias 'agent-a': HTTP 500: fault injected by the JOC emulator." in (
        str(caught.value)
    )
    assert [c.status for c in joc.calls_to(STORE)] == [500]


def test_503_and_dropped_connections_are_repeated_with_backoff(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()
    joc.add_fault(STORE, status=503)
    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    joc.add_fault(STORE, drop=True, after=True)  # stored, but the answer is lost
    keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)
    joc.add_fault("encipherment/certificate/delete", drop=True)
    keystore.delete("agent-b", AUDIT)
    joc.add_fault("encipherment/assignment/add", status=502)
    keystore.add_assignment("agent-a", "agent-1")

    assert [c.status for c in joc.calls_to(STORE)] == [503, 200, None, 200]
    assert [e.alias for e in keystore.list_entries()] == ["agent-a"]
    assert joc.state.assignments == {"agent-a": {"agent-1"}}
    # Repeating a store writes the same entry again: one entry, a second audit-log record.
    assert [e["certAlias"] for e in joc.state.audit_log] == ["agent-a", "agent-b", "agent-b"]


def test_a_connection_that_keeps_dropping_is_an_error_after_the_retries(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect(retries=2)
    keystore.list_entries()
    joc.add_fault(STORE, drop=True, every=True)

    with pytest.raises(BackendError) as caught:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    assert str(caught.value).startswith(
        f"the connection to JOC at {joc.base_url} broke when asked to store alias 'agent-a'"
    )
    assert len(joc.calls_to(STORE)) == 3
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None  # no httpx exception (with its headers) attached


def test_unreachable_joc_names_the_url(connect: Opener) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    with pytest.raises(BackendError) as caught:
        connect(url, retries=1).list_entries()

    message = str(caught.value)
    assert message.startswith(f"cannot reach JOC at {url} for its version:")
    assert "Check the target's url" in message


def test_a_joc_that_does_not_answer_in_time(joc: JocEmulator, connect: Opener) -> None:
    keystore = connect(timeout=0.2, retries=0)
    keystore.list_entries()
    joc.add_fault("encipherment/certificate", delay=2.0)

    with pytest.raises(
        BackendError, match=r"did not answer within 0\.2 seconds when asked to list"
    ):
        keystore.list_entries()


def test_a_url_that_is_not_joc(joc: JocEmulator, connect: Opener) -> None:
    with pytest.raises(BackendError, match="there is no JOC Cockpit API at"):
        connect(joc.base_url + "/elsewhere").list_entries()


# -- deployment -------------------------------------------------------------------------------


def test_at_medium_the_writer_waits_for_the_deployment_before_logout(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.config.deploy_delay = 0.3
    keystore = connect()
    with keystore.writer(AUDIT):
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
        keystore.store("agent-b", make_cert(1), None, "/Other", AUDIT)
    keystore.close()

    assert joc.pending_deployments() == []
    assert {(d["name"], d["ok"]) for d in joc.state.deployments} == {
        ("agent-a", True),
        ("agent-b", True),
    }
    calls = endpoints(joc)
    last_store = max(i for i, name in enumerate(calls) if name == STORE)
    assert "inventory/deployable" in calls[last_store:]
    assert connect.notices == []


def test_logging_out_at_once_would_lose_the_deployment(joc: JocEmulator, connect: Opener) -> None:
    # Why the writer waits: JOC's background deployment fails silently after a logout.
    joc.config.deploy_delay = 0.2
    keystore = connect()
    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)  # outside a writer: no wait
    keystore.close()
    joc.deploy_now()
    assert [d["ok"] for d in joc.state.deployments] == [False]


def test_deployments_not_done_in_time_are_reported(joc: JocEmulator, connect: Opener) -> None:
    joc.config.deploy_delay = 60
    keystore = connect(deploy_timeout=0.2)
    with keystore.writer(AUDIT):
        keystore.store("agent-b", make_cert(1), None, "/Other/", AUDIT)
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    assert len(connect.notices) == 1
    assert connect.notices[0].startswith(
        "JOC has not deployed the Job Resource(s) /Encryption/agent-a, /Other/agent-b within "
        "0.2 seconds"
    )


def test_at_high_nothing_is_awaited_and_the_user_is_told(joc: JocEmulator, connect: Opener) -> None:
    joc.config.security_level = SecurityLevel.HIGH
    keystore = connect()
    with keystore.writer(AUDIT):
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    assert endpoints(joc)[-1] == STORE  # no polling
    assert len(connect.notices) == 1
    assert "security level HIGH" in connect.notices[0]
    assert "/Encryption/agent-a" in connect.notices[0]


def test_a_writer_without_stores_waits_for_nothing(joc: JocEmulator, connect: Opener) -> None:
    joc.state.put_certificate("agent-a", make_cert(0))
    keystore = connect()
    with keystore.writer(AUDIT):
        keystore.delete("agent-a", AUDIT)
        keystore.add_assignment("agent-b", "agent-1")
    assert "inventory/deployable" not in endpoints(joc)
    assert "agent-a" in joc.state.job_resources  # a delete leaves the Job Resource behind


def test_after_a_failed_apply_the_stored_aliases_are_still_awaited(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()
    joc.add_fault(STORE, status=500, nth=2)

    def apply() -> None:
        with keystore.writer(AUDIT):
            keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
            keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)

    with pytest.raises(BackendError, match="HTTP 500"):
        apply()
    keystore.close()
    assert [(d["name"], d["ok"]) for d in joc.state.deployments] == [("agent-a", True)]


def test_interrupting_the_writer_skips_the_wait_and_close_logs_out(
    joc: JocEmulator, connect: Opener
) -> None:
    keystore = connect()

    def apply() -> None:
        with keystore.writer(AUDIT):
            keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
            raise KeyboardInterrupt  # ^C between two steps

    with pytest.raises(KeyboardInterrupt):
        apply()
    keystore.close()
    assert endpoints(joc)[-2:] == [STORE, "authentication/logout"]


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_joc(pki: Pki) -> Iterator[JocEmulator]:
    with JocEmulator(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_ca=pki.ca) as joc:
        joc.config.deploy_delay = 0.01
        yield joc


def test_tls_with_a_ca_bundle(tls_joc: JocEmulator, connect: Opener, pki: Pki) -> None:
    keystore = connect(tls_joc.base_url, ca_bundle=pki.ca)
    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    assert [e.alias for e in keystore.list_entries()] == ["agent-a"]
    assert connect.notices == []  # https: no warning


def test_tls_without_the_ca_bundle_fails_clearly_and_is_not_repeated(
    tls_joc: JocEmulator, connect: Opener
) -> None:
    with pytest.raises(BackendError) as caught:
        connect(tls_joc.base_url).list_entries()

    message = str(caught.value)
    assert message.startswith(f"cannot verify the TLS certificate of JOC at {tls_joc.base_url}:")
    assert "caBundle" in message
    assert "--insecure" in message
    assert tls_joc.calls == []  # the handshake failed; nothing was sent


def test_tls_insecure_skips_verification(tls_joc: JocEmulator, connect: Opener) -> None:
    assert connect(tls_joc.base_url, insecure=True).list_entries() == []


def test_mutual_tls_logs_in_with_the_client_certificate_alone(
    tls_joc: JocEmulator, connect: Opener, pki: Pki
) -> None:
    keystore = connect(
        tls_joc.base_url,
        credentials=None,
        ca_bundle=pki.ca,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )
    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    assert tls_joc.calls_to("authentication/login")[0].account == "root"
    assert tls_joc.state.audit_log[0]["account"] == "root"


def test_open_keystore_with_a_client_certificate_needs_no_credentials(
    tls_joc: JocEmulator, pki: Pki
) -> None:
    connection = {
        "url": tls_joc.base_url,
        "caBundle": str(pki.ca),
        "clientCert": str(pki.client_cert),
        "clientKey": str(pki.client_key),
    }
    keystore = open_keystore("prod", "joc", connection, BackendOptions())  # no JS7_* variables
    try:
        assert keystore.list_entries() == []
    finally:
        keystore.close()
    assert [(c.endpoint, c.account) for c in tls_joc.calls][1:] == [
        ("authentication/login", "root"),
        ("encipherment/certificate", "root"),
        ("encipherment/assignment", "root"),
        ("authentication/logout", "root"),
    ]


def test_a_failed_logout_is_a_notice_not_an_error(joc: JocEmulator, connect: Opener) -> None:
    keystore = connect()
    keystore.list_entries()
    joc.add_fault("authentication/logout", drop=True)
    keystore.close()
    assert len(connect.notices) == 1
    assert connect.notices[0].startswith("could not log out of JOC (the connection to JOC at")
    assert len(joc.calls_to("authentication/logout")) == 1  # not repeated


def test_mutual_tls_settings_are_checked(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs an https:// url"):
        JocKeystore("http://joc:4446", client_cert=pki.client_cert, client_key=pki.client_key)
    with pytest.raises(ConfigError, match="needs both clientCert and clientKey"):
        JocKeystore("https://joc:4443", client_cert=pki.client_cert)
    with pytest.raises(ConfigError, match="cannot load the client certificate"):
        JocKeystore("https://joc:4443", client_cert=tmp_path / "no.crt", client_key=pki.client_key)
    with pytest.raises(ConfigError, match="cannot load the caBundle"):
        JocKeystore("https://joc:4443", credentials=ROOT, ca_bundle=tmp_path / "none.pem")
    with pytest.raises(ConfigError, match="no JOC account is given"):
        JocKeystore("https://joc:4443")


def test_plain_http_is_accepted_with_one_warning(joc: JocEmulator, connect: Opener) -> None:
    keystore = connect()
    keystore.list_entries()
    keystore.list_entries()
    assert connect.all_notices == [
        f"the JOC url {joc.base_url} is plain http://: the password and the session token "
        "travel unencrypted; prefer JOC's https address."
    ]


# -- secrets ------------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def test_no_password_or_token_in_reprs_messages_or_exception_chains(
    joc: JocEmulator, connect: Opener
) -> None:
    joc.config.accounts["ci"] = Account(SECRET_PASSWORD, VIEW_PERMISSIONS)
    keystore = connect(credentials=Credentials("ci", SECRET_PASSWORD))
    keystore.list_entries()
    token = keystore._token  # the session's token, to look for it below
    assert token
    secrets = [SECRET_PASSWORD, token]
    failures: list[Js7CertCtlError] = []

    def attempt(action: Callable[[], Any]) -> None:
        try:
            action()
        except Js7CertCtlError as exc:
            failures.append(exc)

    attempt(lambda: keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT))  # 403
    joc.add_fault("encipherment/certificate", drop=True, every=True)
    attempt(keystore.list_entries)  # dropped connections
    joc.clear_faults()
    joc.add_fault("encipherment/certificate", status=500, body=f"token {token}")
    attempt(keystore.list_entries)  # a foreign body that quotes the token

    assert len(failures) == 3
    texts = [repr(keystore)]
    for failure in failures:
        texts.append("".join(traceback.format_exception(failure)))
        texts += [repr(e) + str(e) for e in _chain(failure)]
    texts += connect.all_notices
    for text in texts:
        for secret in secrets:
            assert secret not in text
