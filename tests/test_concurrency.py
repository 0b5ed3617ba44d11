"""Concurrency through the CLI on the embedded keystore: two applies, stale plans, stale locks.

The first apply runs as a child process that pauses inside its write session, holding the lock
(``tests/pausing_cli.py``), while the test runs the second one.
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog
from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli
from tests.pausing_cli import PausedRun

KEY_PATH = "/var/sos-berlin.com/js7/agent/config/private/agent.key"


@dataclass
class Setup:
    repo: GitRepo
    keystore: Path

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = run_cli(*args, "--repo", str(self.repo.path))
        return result.exit_code, result.stdout, result.stderr


def _cert(cn: str, variant: int) -> str:
    return certgen.make_cert(certgen.ec_key("P-256", variant=variant), cn=cn, days=400)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """Three aliases to create (team-*, in scope) and one live alias outside the scope."""
    repo = GitRepo(tmp_path / "repo")
    (repo.path / ".git" / "info" / "exclude").write_text(".js7certctl/\n")
    repo.write("js7certctl.yaml", 'policy:\n  scope: ["team-*"]\n')
    for index, alias in enumerate(("team-a", "team-b", "team-c"), start=1):
        repo.write(f"{alias}.yaml", manifest(alias, certificate=_cert(alias, index)))
    repo.commit()
    keystore = repo.path / ".js7certctl" / "keystore.db"
    with LocalKeystore(keystore) as store:
        store.store("other-x", _cert("other", 9), KEY_PATH, "/Other", AuditLog())
    return Setup(repo, keystore)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_second_apply_waits_then_fails_naming_the_holder(setup: Setup) -> None:
    first = PausedRun(
        ["apply", "--repo", str(setup.repo.path), "--auto-approve"],
        pause_at=1,
        phase="after",
        cwd=setup.repo.path,
    )
    assert first.paused()  # one alias stored, the lock held
    before = _digest(setup.keystore)
    code, _, err = setup.cli("apply", "--auto-approve", "--lock-timeout", "0.5")
    assert code == 1
    assert "Traceback" not in err
    assert f"is locked by pid {first.proc.pid} on host {socket.gethostname()}" in err, err
    assert "(command js7certctl apply)" in err, err
    assert "gave up after waiting 0.5 seconds" in err, err
    assert _digest(setup.keystore) == before  # the second apply wrote nothing

    code, out, err = first.finish()  # the first goes on and completes
    assert code == 0, err
    assert "Apply complete: 3 added, 0 changed, 0 deleted." in out
    code, out, _ = setup.cli("plan", "--detailed-exitcode")
    assert code == 0, out
    assert setup.keystore.with_name("keystore.db.lock").read_text() == ""  # no holder now


def test_a_lock_left_by_a_killed_apply_is_recovered_at_once(setup: Setup) -> None:
    first = PausedRun(
        ["apply", "--repo", str(setup.repo.path), "--auto-approve"],
        pause_at=2,
        phase="after",
        cwd=setup.repo.path,
    )
    assert first.paused()
    first.kill()
    lock = setup.keystore.with_name("keystore.db.lock")
    record = json.loads(lock.read_text())
    assert record["pid"] == first.proc.pid  # the dead holder's record is still there
    assert record["command"] == "js7certctl apply"

    code, out, err = setup.cli("apply", "--auto-approve", "--lock-timeout", "0")
    assert code == 0, err
    assert "Apply complete: 1 added, 0 changed, 0 deleted." in out  # the one not yet stored
    assert lock.read_text() == ""
    assert setup.cli("plan", "--detailed-exitcode")[0] == 0


def test_a_plan_applied_after_the_keystore_changed_is_refused_as_stale(
    setup: Setup, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    code, _, err = setup.cli("plan", "--out", str(plan))
    assert code == 0, err
    # Someone else changes the keystore: two aliases in scope, one outside it.
    with LocalKeystore(setup.keystore) as store:
        store.store("team-b", _cert("intruder", 10), KEY_PATH, "/Encryption", AuditLog())
        store.store("team-z", _cert("intruder-z", 11), KEY_PATH, "/Encryption", AuditLog())
        store.store("other-x", _cert("other-2", 12), KEY_PATH, "/Other", AuditLog())
    before = _digest(setup.keystore)

    result = run_cli("apply", str(plan), "--auto-approve")
    assert result.exit_code == 1
    assert (
        "Error: the plan is stale: the live keystore changed since it was made (team-b, team-z)."
        in result.stderr
    ), result.stderr
    assert "Run `js7certctl plan` again" in result.stderr
    assert _digest(setup.keystore) == before
    assert [e.alias for e in LocalKeystore(setup.keystore).list_entries()] == [
        "other-x",
        "team-b",
        "team-z",
    ]


def test_writes_outside_the_scope_never_make_a_plan_stale(setup: Setup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert setup.cli("plan", "--out", str(plan))[0] == 0
    with LocalKeystore(setup.keystore) as store:
        store.store("other-x", _cert("other-3", 13), KEY_PATH, "/Other", AuditLog())
        store.delete("other-y", AuditLog())
    result = run_cli("apply", str(plan), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Apply complete: 3 added, 0 changed, 0 deleted." in result.stdout
