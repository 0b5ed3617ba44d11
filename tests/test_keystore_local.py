"""The embedded SQLite keystore: the backend contract plus what only a local file can show."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from js7certctl.errors import BackendError, LockError
from js7certctl.keystore.local import LocalKeystore, command_summary
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity
from tests.keystore_contract import AUDIT, FOLDER, KeystoreContract, make_cert, rsa_key

REPO_ROOT = Path(__file__).resolve().parents[1]


class TestLocalKeystoreContract(KeystoreContract):
    @pytest.fixture
    def keystore(self, tmp_path: Path) -> Iterator[LocalKeystore]:
        ks = LocalKeystore(tmp_path / "store" / "keystore.db", name="dev")
        yield ks
        ks.close()

    @pytest.fixture
    def expected_identity(self, tmp_path: Path) -> TargetIdentity:
        return TargetIdentity("dev", "local", str((tmp_path / "store" / "keystore.db").resolve()))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "keystore.db"


@pytest.fixture
def ks(db: Path) -> Iterator[LocalKeystore]:
    keystore = LocalKeystore(db)
    yield keystore
    keystore.close()


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python child running ``code`` with this checkout importable; stdin/stdout are pipes."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


# -- identity ---------------------------------------------------------------------------------


def test_identity_location_is_the_absolute_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)

    keystore = LocalKeystore(Path("link/keystore.db"), name="laptop")

    expected = str((tmp_path / "real" / "keystore.db").resolve())
    assert keystore.identity == TargetIdentity("laptop", "local", expected)
    assert keystore.identity.location == str(keystore.path)


# -- reading never creates anything -----------------------------------------------------------


def test_reading_a_missing_store_returns_nothing_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "missing-folder" / "keystore.db"
    keystore = LocalKeystore(db)

    assert keystore.list_entries() == []
    keystore.close()

    assert list(tmp_path.iterdir()) == []


def test_reading_an_existing_store_leaves_no_side_files(ks: LocalKeystore, db: Path) -> None:
    ks.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    ks.close()
    before = db.read_bytes()

    reader = LocalKeystore(db)
    assert [e.alias for e in reader.list_entries()] == ["agent-a"]
    reader.close()

    assert sorted(p.name for p in db.parent.iterdir()) == ["keystore.db"]
    assert db.read_bytes() == before


def test_an_empty_file_reads_as_an_empty_store_and_can_be_written(db: Path) -> None:
    db.parent.mkdir()
    db.touch()
    keystore = LocalKeystore(db)

    assert keystore.list_entries() == []
    assert db.stat().st_size == 0  # reading did not initialise it
    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    assert [e.alias for e in keystore.list_entries()] == ["agent-a"]
    keystore.close()


def test_the_first_write_creates_the_folder_and_a_0600_database(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "keystore.db"
    keystore = LocalKeystore(db)

    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    keystore.close()

    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert not keystore.lock_path.exists()  # only writer() makes the lock file


def test_a_path_with_uri_special_characters_works(tmp_path: Path) -> None:
    db = tmp_path / "with space #1 ?x=%20&y" / "key store.db"
    keystore = LocalKeystore(db)

    keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    keystore.close()

    assert db.is_file()
    assert sorted(p.name for p in db.parent.iterdir()) == ["key store.db"]
    with LocalKeystore(db) as reader:
        assert [e.alias for e in reader.list_entries()] == ["agent-a"]


# -- files that are not our store -------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"hello, world\n" * 200, b"x"])
def test_a_file_that_is_not_a_database_is_refused_naming_it(db: Path, content: bytes) -> None:
    db.parent.mkdir()
    garbage = b"not a database: " + content
    db.write_bytes(garbage)
    keystore = LocalKeystore(db)

    with pytest.raises(BackendError) as read_error:
        keystore.list_entries()
    with pytest.raises(BackendError) as write_error:
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    keystore.close()

    for error in (read_error.value, write_error.value):
        assert str(db.resolve()) in str(error)
        assert "not a SQLite database" in str(error)
        assert error.hint
    assert db.read_bytes() == garbage


def test_a_foreign_sqlite_database_is_refused(db: Path) -> None:
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    keystore = LocalKeystore(db)

    with pytest.raises(BackendError, match="not a js7certctl keystore") as error:
        keystore.list_entries()
    with pytest.raises(BackendError, match="not a js7certctl keystore"):
        keystore.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    keystore.close()

    assert str(db.resolve()) in str(error.value)


def test_an_unknown_schema_version_is_refused(ks: LocalKeystore, db: Path) -> None:
    ks.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    ks.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE js7certctl_schema SET version = 99")
    conn.close()

    keystore = LocalKeystore(db)
    with pytest.raises(BackendError) as error:
        keystore.list_entries()
    keystore.close()

    assert str(db.resolve()) in str(error.value)
    assert "99" in str(error.value)
    assert error.value.hint is not None
    assert "Upgrade js7certctl" in error.value.hint


def test_a_folder_in_place_of_the_file_is_refused(db: Path) -> None:
    db.mkdir(parents=True)
    keystore = LocalKeystore(db)

    with pytest.raises(BackendError) as error:
        keystore.list_entries()
    keystore.close()

    assert str(db.resolve()) in str(error.value)


# -- JOC's quirks and limits ------------------------------------------------------------------


def test_a_private_key_beside_the_certificate_is_stored_whole_like_joc(ks: LocalKeystore) -> None:
    # JOC's check is a regular expression only, so the client must refuse such input itself.
    private_pem = (
        rsa_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )
    text = private_pem + make_cert(0)

    ks.store("agent-a", text, None, FOLDER, AUDIT)

    assert ks.list_entries()[0].certificate == text


@pytest.mark.parametrize(
    "audit",
    [
        AuditLog(comment="x" * 256),
        AuditLog(comment="see <b>here</b>"),
        AuditLog(ticket_link="https://example.test/" + "t" * 240),
        AuditLog(ticket_link="https://example.test/?a>b"),
        AuditLog(time_spent=-1),
    ],
    ids=["long-comment", "angle-comment", "long-ticket", "angle-ticket", "negative-time"],
)
def test_audit_fields_breaking_jocs_limits_are_refused(ks: LocalKeystore, audit: AuditLog) -> None:
    ks.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    with pytest.raises(BackendError, match="audit-log"):
        ks.store("agent-a", make_cert(1), None, FOLDER, audit)
    with pytest.raises(BackendError, match="audit-log"):
        ks.delete("agent-a", audit)

    assert ks.list_entries()[0].certificate == make_cert(0)


def test_audit_fields_at_jocs_limits_are_accepted(ks: LocalKeystore) -> None:
    audit = AuditLog(comment="c" * 255, ticket_link="t" * 255, time_spent=0)

    ks.store("agent-a", make_cert(0), None, FOLDER, audit)

    assert [e.alias for e in ks.list_entries()] == ["agent-a"]


# -- the audit table --------------------------------------------------------------------------


def _audit_rows(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT action, alias, agent_id, comment, ticket_link, time_spent, user, host, pid,"
            " timestamp FROM audit ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_the_audit_table_records_every_write_and_who_made_it(ks: LocalKeystore, db: Path) -> None:
    apply_audit = AuditLog(comment="js7certctl apply abc123", ticket_link="https://ci/1")
    ks.store("agent-a", make_cert(0), None, FOLDER, AuditLog("first", "https://t/1", 5))
    ks.add_assignment("agent-a", "agent-0")
    with ks.writer(apply_audit):
        ks.store("agent-b", make_cert(1), "/b.key", FOLDER, apply_audit)
        ks.add_assignment("agent-b", "agent-1")
        ks.remove_assignment("agent-b", "agent-1")
    ks.delete("agent-a", AuditLog(comment="cleanup"))

    rows = _audit_rows(db)

    assert [row[:6] for row in rows] == [
        ("store", "agent-a", None, "first", "https://t/1", 5),
        ("assignment-add", "agent-a", "agent-0", None, None, None),
        ("store", "agent-b", None, "js7certctl apply abc123", "https://ci/1", None),
        ("assignment-add", "agent-b", "agent-1", "js7certctl apply abc123", "https://ci/1", None),
        (
            "assignment-remove",
            "agent-b",
            "agent-1",
            "js7certctl apply abc123",
            "https://ci/1",
            None,
        ),
        ("delete", "agent-a", None, "cleanup", None, None),
    ]
    for row in rows:
        user, host, pid, timestamp = row[6:]
        assert isinstance(user, str)
        assert user
        assert host == socket.gethostname()
        assert pid == os.getpid()
        assert isinstance(timestamp, str)
        assert timestamp.endswith("+00:00")


def test_a_refused_store_writes_no_audit_row(ks: LocalKeystore, db: Path) -> None:
    ks.store("agent-a", make_cert(0), None, FOLDER, AUDIT)

    with pytest.raises(BackendError):
        ks.store("agent-b", "garbage", None, FOLDER, AUDIT)

    assert [row[:2] for row in _audit_rows(db)] == [("store", "agent-a")]


# -- the writer lock --------------------------------------------------------------------------

_HOLDER = """
import sys
from pathlib import Path
from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog

db = Path(sys.argv[1])
sys.argv = ["/usr/local/bin/js7certctl", "apply", "--comment", "s3cret-argument"]
keystore = LocalKeystore(db)
with keystore.writer(AuditLog(comment="holder")):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def test_a_second_writer_waits_then_names_the_holder(db: Path) -> None:
    holder = _spawn(_HOLDER, str(db))
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        waiter = LocalKeystore(db, lock_timeout=0.3)

        with pytest.raises(LockError) as error, waiter.writer(AUDIT):
            pytest.fail("the lock was taken while another process held it")

        message = str(error.value)
        assert f"pid {holder.pid}" in message
        assert f"host {socket.gethostname()}" in message
        assert "(command js7certctl apply)" in message
        assert str(db.resolve()) in message
        assert error.value.hint
        assert "s3cret" not in message
        assert "s3cret" not in waiter.lock_path.read_text()

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "released\n"
        assert holder.wait(timeout=10) == 0

        with waiter.writer(AUDIT):
            waiter.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
        assert [e.alias for e in waiter.list_entries()] == ["agent-a"]
        waiter.close()
    finally:
        _stop(holder)


def test_a_lock_left_by_a_killed_holder_is_taken_at_once(db: Path) -> None:
    holder = _spawn(_HOLDER, str(db))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        holder.kill()
        holder.wait(timeout=10)
    finally:
        _stop(holder)
    keystore = LocalKeystore(db, lock_timeout=0)
    stale = keystore.lock_holder()
    assert stale is not None
    assert stale.pid == holder.pid

    with keystore.writer(AUDIT):  # a single non-blocking attempt must succeed
        current = keystore.lock_holder()
        assert current is not None
        assert current.pid == os.getpid()
        assert current.host == socket.gethostname()

    assert keystore.lock_holder() is None  # released: the record is cleared
    keystore.close()


def test_the_lock_is_exclusive_between_instances_in_one_process(db: Path) -> None:
    first = LocalKeystore(db)
    second = LocalKeystore(db, lock_timeout=0)

    with first.writer(AUDIT):
        with pytest.raises(LockError, match=f"pid {os.getpid()}"), second.writer(AUDIT):
            pytest.fail("the lock was taken twice")
        with pytest.raises(RuntimeError), first.writer(AUDIT):
            pytest.fail("writer() nested on one instance")

    with second.writer(AUDIT):
        pass
    assert first.lock_path.exists()
    assert stat.S_IMODE(first.lock_path.stat().st_mode) == 0o600


def test_a_busy_database_gives_a_lock_error_after_the_timeout(ks: LocalKeystore, db: Path) -> None:
    ks.store("agent-a", make_cert(0), None, FOLDER, AUDIT)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("DELETE FROM certificates")
        keystore = LocalKeystore(db, lock_timeout=0.2)

        # A pending writer does not block readers (they still see the committed state) ...
        assert [e.alias for e in keystore.list_entries()] == ["agent-a"]
        # ... but a second writer gives up after the timeout.
        with pytest.raises(LockError, match="busy"):
            keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)
        other.execute("ROLLBACK")

        keystore.store("agent-b", make_cert(1), None, FOLDER, AUDIT)
        assert [e.alias for e in keystore.list_entries()] == ["agent-a", "agent-b"]
        keystore.close()
    finally:
        other.close()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/bin/js7certctl", "apply", "--comment", "secret"], "js7certctl apply"),
        (["js7certctl", "--password", "secret", "apply"], "js7certctl"),
        (["/x/js7certctl/__main__.py", "plan", "--out", "p.json"], "js7certctl plan"),
        (["/usr/bin/js7certctl", "Secret Value"], "js7certctl"),
        (["/usr/bin/js7certctl"], "js7certctl"),
        ([], "unknown"),
    ],
)
def test_the_lock_records_only_program_and_subcommand(argv: list[str], expected: str) -> None:
    assert command_summary(argv) == expected


# -- crash safety -----------------------------------------------------------------------------

_WRITER = """
import json
import sys
from pathlib import Path
from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog

keystore = LocalKeystore(Path(sys.argv[1]))
certs = json.loads(Path(sys.argv[2]).read_text())
audit = AuditLog(comment="crash test")
i = 0
while True:
    alias = f"a{i:05d}"
    keystore.store(alias, certs[i % 2], f"/keys/{i}.key", f"/F{i % 3}", audit)
    keystore.add_assignment(alias, "agent-1")
    keystore.add_assignment(alias, "agent-2")
    if i >= 2:
        keystore.delete(f"a{i - 2:05d}", audit)
    i += 1
    if i == 20:
        print("running", flush=True)
"""


def test_a_writer_killed_mid_write_leaves_a_consistent_store(tmp_path: Path, db: Path) -> None:
    certs = [make_cert(0), make_cert(1).replace("\n", "\r\n")]
    certs_file = tmp_path / "certs.json"
    certs_file.write_text(json.dumps(certs))
    writer = _spawn(_WRITER, str(db), str(certs_file))
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "running\n"
        writer.kill()  # SIGKILL while it keeps writing
        writer.wait(timeout=10)
    finally:
        _stop(writer)

    keystore = LocalKeystore(db)
    entries = keystore.list_entries()  # rolls back a hot journal, if the kill left one
    keystore.close()

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        audit = conn.execute("SELECT action, alias, agent_id FROM audit ORDER BY id").fetchall()
        live = {
            alias: (cert, key)
            for alias, cert, key in conn.execute(
                "SELECT alias, certificate, private_key_path FROM certificates"
            )
        }
        job_resources = {
            name: (folder, cert, key)
            for name, folder, cert, key in conn.execute(
                "SELECT name, folder, encipherment_certificate, encipherment_private_key_path"
                " FROM job_resources"
            )
        }
        assignments = set(conn.execute("SELECT alias, agent_id FROM assignments").fetchall())
    finally:
        conn.close()

    def name(k: int) -> str:
        return f"a{k:05d}"

    stores = [alias for action, alias, _ in audit if action == "store"]
    deletes = [alias for action, alias, _ in audit if action == "delete"]
    adds = {(alias, agent) for action, alias, agent in audit if action == "assignment-add"}
    n, d = len(stores), len(deletes)
    assert n >= 20
    assert stores == [name(k) for k in range(n)]
    assert deletes == [name(k) for k in range(d)]
    # Each store wrote its certificate, its Job Resource and its audit row together ...
    assert set(live) == {name(k) for k in range(d, n)}
    assert set(job_resources) == set(stores)
    for k in range(n):
        expected_cert, expected_key = certs[k % 2], f"/keys/{k}.key"
        assert job_resources[name(k)] == (f"/F{k % 3}", expected_cert, expected_key)
        if name(k) in live:
            assert live[name(k)] == (expected_cert, expected_key)
    # ... each assignment row belongs to a whole add, and each delete took its assignments along.
    assert assignments == {(alias, agent) for alias, agent in adds if alias in live}
    assert [e.alias for e in entries] == sorted(live)
    for entry in entries:
        agents = tuple(sorted(agent for alias, agent in assignments if alias == entry.alias))
        cert, key = live[entry.alias]
        folder = job_resources[entry.alias][0]
        assert entry == LiveEntry(entry.alias, cert, key, folder, agents)


# The child stops at a chosen SQL statement of its second write (SQLite's trace callback on the
# store's one connection is the narrow seam: it runs before each statement) and waits there to be
# SIGKILLed, so the kill lands inside that write's transaction every time.
_STOPPED_WRITER = """
import sys
import time
from pathlib import Path
from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog

db, cert, operation, stop_at = Path(sys.argv[1]), Path(sys.argv[2]).read_text(), *sys.argv[3:]
keystore = LocalKeystore(db)
audit = AuditLog(comment="crash test")
keystore.store("a0", cert, "/keys/a0.key", "/F0", audit)
keystore.add_assignment("a0", "agent-1")


def stop(statement: str) -> None:
    if statement.startswith(stop_at):
        print("stopped", flush=True)
        time.sleep(60)


keystore._conn.set_trace_callback(stop)
if operation == "store":
    keystore.store("a1", cert, "/keys/a1.key", "/F1", audit)
elif operation == "update":
    keystore.store("a0", cert.replace("\\n", "\\r\\n"), None, "/F1", audit)
else:
    keystore.delete("a0", audit)
print("finished", flush=True)
"""


@pytest.mark.parametrize(
    ("operation", "stop_at"),
    [
        ("store", "INSERT INTO job_resources"),
        ("store", "INSERT INTO audit"),
        ("store", "COMMIT"),
        ("update", "INSERT INTO job_resources"),
        ("delete", "DELETE FROM assignments"),
        ("delete", "COMMIT"),
    ],
)
def test_a_writer_killed_inside_a_write_leaves_none_of_it(
    tmp_path: Path, db: Path, operation: str, stop_at: str
) -> None:
    cert_file = tmp_path / "cert.pem"
    cert_file.write_text(make_cert(0))
    writer = _spawn(_STOPPED_WRITER, str(db), str(cert_file), operation, stop_at)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "stopped\n"
        writer.kill()
        writer.wait(timeout=10)
    finally:
        _stop(writer)

    keystore = LocalKeystore(db)
    entries = keystore.list_entries()
    keystore.close()

    assert entries == [LiveEntry("a0", make_cert(0), "/keys/a0.key", "/F0", ("agent-1",))]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT name, folder FROM job_resources").fetchall() == [("a0", "/F0")]
        assert conn.execute("SELECT action, alias FROM audit ORDER BY id").fetchall() == [
            ("store", "a0"),
            ("assignment-add", "a0"),
        ]
    finally:
        conn.close()
