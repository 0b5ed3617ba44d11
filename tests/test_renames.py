"""Renames through the CLI: `previousAliases` gives one rename, not a delete and a create."""

from __future__ import annotations

from js7certctl.keystore.local import LocalKeystore
from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli


def _with_previous(text: str, previous: str) -> str:
    return text.replace("metadata:\n", f"metadata:\n  previousAliases: [{previous}]\n")


def test_rename_plan_apply_converges(repo: GitRepo) -> None:
    cert = certgen.make_cert(cn="payments")
    repo.write("a.yaml", manifest("payments-old", certificate=cert, agents=["agent-1", "agent-2"]))
    assert run_cli("apply", "--auto-approve", "--repo", str(repo.path)).exit_code == 0
    # Rename; the new manifest does not declare agents: the assignments are carried over.
    renamed = manifest("payments", certificate=cert, job_resource_folder="/Payments")
    repo.write("a.yaml", _with_previous(renamed, "payments-old"))
    plan = run_cli("plan", "--repo", str(repo.path), "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stderr
    assert "  > payments (renamed from payments-old)\n" in plan.stdout
    assert "agents:            + agent-1, + agent-2 (carried over)" in plan.stdout
    assert "/Encryption/payments-old stays behind in the inventory" in plan.stdout
    assert "  - payments-old" not in plan.stdout
    assert plan.stdout.rstrip().endswith("Plan: 0 to add, 0 to change, 0 to delete, 1 to rename.")
    applied = run_cli("apply", "--auto-approve", "--repo", str(repo.path))
    assert applied.exit_code == 0, applied.stderr
    assert "created payments (renamed from payments-old)" in applied.stderr
    assert "deleted payments-old" in applied.stderr
    store = LocalKeystore(repo.path / ".js7certctl" / "keystore.db")
    entries = store.list_entries()
    store.close()
    assert [(e.alias, e.agents, e.job_resource_folder) for e in entries] == [
        ("payments", ("agent-1", "agent-2"), "/Payments")
    ]
    assert run_cli("plan", "--repo", str(repo.path), "--detailed-exitcode").exit_code == 0


def test_rename_conflicts_are_validation_errors(repo: GitRepo) -> None:
    cert = certgen.make_cert(cn="x")
    repo.write("a.yaml", _with_previous(manifest("alpha", certificate=cert), "beta"))
    repo.write("b.yaml", manifest("beta", certificate=cert))
    repo.write("c.yaml", _with_previous(manifest("gamma", certificate=cert), "delta"))
    repo.write("d.yaml", _with_previous(manifest("epsilon", certificate=cert), "delta"))
    repo.write("e.yaml", _with_previous(manifest("zeta", certificate=cert), "zeta"))
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if "[rename-conflict]" in line]
    assert lines == [
        "a.yaml:4:21: error: previousAliases lists 'beta', which is still an alias at b.yaml:4; "
        "remove one of them [rename-conflict]",
        "d.yaml:4:21: error: 'delta' is also a previous alias of 'gamma' at c.yaml:4; an alias "
        "can be renamed only once [rename-conflict]",
        "e.yaml:4:21: error: previousAliases lists the alias 'zeta' itself [rename-conflict]",
    ]
