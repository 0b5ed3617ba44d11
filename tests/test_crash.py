"""Crash consistency of the embedded keystore: ``apply`` SIGKILLed at every write.

One plan of eleven writes (stores, Agent assignments added and removed, deletes) is applied by a
child process that pauses just before, or just after, the COMMIT of its K-th write transaction
(``tests/pausing_cli.py``: the seam is the sqlite3 library) and is then killed with SIGKILL. After
each kill:

- the SQLite file passes ``PRAGMA integrity_check`` (a kill inside a transaction leaves its
  rollback journal behind; the uncommitted transaction is invisible, and the next writer clears
  the journal);
- the audit table holds exactly one row per committed write, in the plan's order;
- the next ``plan`` shows exactly the steps that were not committed;
- the next ``apply`` (with ``--lock-timeout 0``: the killed process's lock is free at once)
  finishes, and the plan after it is empty.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from js7certctl.apply import Step, steps_of
from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog
from js7certctl.planfile import read_plan
from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli
from tests.pausing_cli import PausedRun

AUDIT_ACTION = {
    "store": "store",
    "assign": "assignment-add",
    "unassign": "assignment-remove",
    "delete": "delete",
}


def _cert(cn: str, variant: int) -> str:
    return certgen.make_cert(certgen.ec_key("P-256", variant=variant), cn=cn, days=400)


@dataclass
class Scenario:
    repo: GitRepo
    keystore: Path
    template: Path  # the keystore before the apply
    plan: Path
    steps: list[Step]

    def restore(self) -> None:
        for leftover in self.keystore.parent.glob("keystore.db*"):
            if leftover.name != "keystore.db.lock":  # the killed holder's record stays
                leftover.unlink()
        shutil.copy(self.template, self.keystore)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """Manifests that create three aliases, update one and let two be deleted."""
    root = tmp_path_factory.mktemp("crash")
    repo = GitRepo(root / "repo")
    (repo.path / ".git" / "info" / "exclude").write_text(".js7certctl/\n")
    keep = _cert("keep", 1)
    repo.write("certs/keep.yaml", manifest("keep", certificate=keep, agents=["agent-1"]))
    repo.write("certs/upd.yaml", manifest("upd", certificate=_cert("upd", 2), agents=["a1", "a3"]))
    repo.write("certs/new1.yaml", manifest("new1", certificate=_cert("n1", 3), agents=["a1", "a2"]))
    repo.write("certs/new2.yaml", manifest("new2", certificate=_cert("n2", 4), agents=["b1"]))
    repo.write("certs/new3.yaml", manifest("new3", certificate=_cert("n3", 5)))
    repo.commit("manifests")
    keystore = repo.path / ".js7certctl" / "keystore.db"
    key_path = "/var/sos-berlin.com/js7/agent/config/private/agent.key"
    with LocalKeystore(keystore) as store:
        seed = AuditLog(comment="seed")
        store.store("keep", keep, key_path, "/Encryption", seed)
        store.add_assignment("keep", "agent-1")
        store.store("upd", _cert("upd-old", 6), key_path, "/Encryption", seed)
        for agent in ("a1", "a2"):
            store.add_assignment("upd", agent)
        store.store("del1", _cert("del1", 7), key_path, "/Encryption", seed)
        store.store("del2", _cert("del2", 8), key_path, "/Encryption", seed)
    template = root / "template.db"
    shutil.copy(keystore, template)
    plan = root / "plan.json"
    result = run_cli("plan", "--repo", str(repo.path), "--out", str(plan))
    assert result.exit_code == 0, result.output
    steps = steps_of(read_plan(plan).changes)
    kinds = {step.kind for step in steps}
    assert kinds == {"store", "assign", "unassign", "delete"}
    return Scenario(repo, keystore, template, plan, steps)


def _audit_rows(db: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT action, alias, agent_id FROM audit ORDER BY id").fetchall()
    conn.close()
    return [(str(a), str(b), c) for a, b, c in rows]


def _key(step: Step) -> tuple[str, str, str | None]:
    return (step.kind, step.alias, step.agent)


def test_apply_killed_at_every_write_leaves_a_consistent_store_that_converges(
    scenario: Scenario,
) -> None:
    seeded = _audit_rows(scenario.template)
    total = len(scenario.steps)
    kills = 0
    for pause_at in range(1, total + 1):
        for phase in ("before", "after"):
            where = f"killed {phase} the commit of write {pause_at} of {total}"
            scenario.restore()
            child = PausedRun(
                ["apply", str(scenario.plan), "--auto-approve"],
                pause_at=pause_at,
                phase=phase,
                cwd=scenario.repo.path,
            )
            assert child.paused(), f"{where}: the child never got there"
            hot_journal = scenario.keystore.with_name("keystore.db-journal")
            # Inside the transaction a rollback journal exists; after the COMMIT it is gone.
            assert hot_journal.exists() == (phase == "before"), where
            child.kill()
            kills += 1
            committed = pause_at - 1 if phase == "before" else pause_at

            with sqlite3.connect(scenario.keystore) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
            conn.close()
            audit = _audit_rows(scenario.keystore)
            assert audit[: len(seeded)] == seeded, where
            expected = [
                (AUDIT_ACTION[s.kind], s.alias, s.agent) for s in scenario.steps[:committed]
            ]
            assert audit[len(seeded) :] == expected, where

            # The next plan shows exactly the rest.
            rest = scenario.plan.with_name("rest.json")
            result = run_cli("plan", "--repo", str(scenario.repo.path), "--out", str(rest))
            assert result.exit_code == 0, f"{where}\n{result.output}"
            remaining = sorted(_key(s) for s in steps_of(read_plan(rest).changes))
            assert remaining == sorted(_key(s) for s in scenario.steps[committed:]), where

            # The lock the killed process held is free at once; the next apply finishes.
            result = run_cli(
                "apply",
                "--repo",
                str(scenario.repo.path),
                "--auto-approve",
                "--lock-timeout",
                "0",
            )
            assert result.exit_code == 0, f"{where}\n{result.output}"
            assert not hot_journal.exists(), where  # the next writer rolled it back
            result = run_cli("plan", "--repo", str(scenario.repo.path), "--detailed-exitcode")
            assert result.exit_code == 0, f"{where}\n{result.output}"
    assert kills == 2 * total


def test_an_uninterrupted_apply_writes_each_step_once(scenario: Scenario) -> None:
    """The reference for the kill loop: the same child, never paused, applies the whole plan."""
    scenario.restore()
    child = PausedRun(
        ["apply", str(scenario.plan), "--auto-approve"],
        pause_at=0,
        phase="after",
        cwd=scenario.repo.path,
    )
    assert not child.paused()
    code, out, err = child.finish()
    assert code == 0, err
    assert "Apply complete: 3 added, 1 changed, 2 deleted." in out
    seeded = _audit_rows(scenario.template)
    audit = _audit_rows(scenario.keystore)[len(seeded) :]
    assert audit == [(AUDIT_ACTION[s.kind], s.alias, s.agent) for s in scenario.steps]
    assert len(audit) == 11
