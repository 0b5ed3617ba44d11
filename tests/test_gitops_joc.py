"""import, drift and renames against the JOC emulator (a `joc` target), through the CLI."""

from __future__ import annotations

import pytest

from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli
from tests.joc_emulator import ALL_PERMISSIONS, Account, JocEmulator
from tests.joc_emulator.fixture import joc_emulator_fixture  # noqa: F401

PASSWORD = "Pw-import-secret-9"
ENV = {"JS7_USER": "ci", "JS7_PASSWORD": PASSWORD}


@pytest.fixture
def joc(joc_emulator: JocEmulator) -> JocEmulator:
    joc_emulator.config.deploy_delay = 0.01
    joc_emulator.config.accounts["ci"] = Account(PASSWORD, ALL_PERMISSIONS)
    return joc_emulator


def _config(repo: GitRepo, joc: JocEmulator) -> None:
    repo.write(
        "js7certctl.yaml",
        "manifests: [certs/]\n"
        f'targets:\n  prod: {{backend: joc, url: "{joc.base_url}"}}\n'
        "defaultTarget: prod\n",
    )


def test_import_then_plan_is_empty_on_joc(repo: GitRepo, joc: JocEmulator) -> None:
    _config(repo, joc)
    repo.commit("config")
    joc.state.put_certificate("agent-a", certgen.make_cert(cn="a"), "/keys/a.key", "/Encryption")
    joc.state.put_certificate("agent-b", certgen.make_cert(cn="b"), None, "/Other/Place")
    joc.state.assign("agent-b", "agent-001")
    joc.state.assign("agent-b", "subagent-002")
    result = run_cli("import", "--repo", str(repo.path), env=ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "wrote certs/agent-a.yaml\nwrote certs/agent-b.yaml\n"
    text_b = (repo.path / "certs" / "agent-b.yaml").read_text()
    assert "jobResourceFolder: /Other/Place" in text_b
    assert "    - agent-001\n    - subagent-002\n" in text_b
    assert "privateKeyPath" not in text_b
    plan = run_cli("plan", "--repo", str(repo.path), "--detailed-exitcode", env=ENV)
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert PASSWORD not in plan.output + result.output


def test_drift_and_rename_on_joc(repo: GitRepo, joc: JocEmulator) -> None:
    _config(repo, joc)
    cert = certgen.make_cert(cn="x")
    repo.write("certs/a.yaml", manifest("old-name", certificate=cert, agents=["agent-1"]))
    repo.commit("first")
    assert run_cli("apply", "--auto-approve", "--repo", str(repo.path), env=ENV).exit_code == 0
    assert run_cli("drift", "--repo", str(repo.path), env=ENV).exit_code == 0
    joc.state.assign("old-name", "by-hand")
    drift = run_cli("drift", "--repo", str(repo.path), env=ENV)
    assert drift.exit_code == 2
    assert "by-hand only in the keystore" in drift.stdout
    # Rename (agents not declared: carried over, including the hand-made one).
    renamed = manifest("new-name", certificate=cert).replace(
        "metadata:\n", "metadata:\n  previousAliases: [old-name]\n"
    )
    repo.write("certs/a.yaml", renamed)
    repo.commit("rename")
    plan = run_cli("plan", "--repo", str(repo.path), env=ENV)
    assert "  > new-name (renamed from old-name)" in plan.stdout
    applied = run_cli("apply", "--auto-approve", "--repo", str(repo.path), env=ENV)
    assert applied.exit_code == 0, applied.stderr
    snapshot = joc.state.snapshot()
    assert sorted(snapshot["certificates"]) == ["new-name"]
    assert sorted(snapshot["assignments"]["new-name"]) == ["agent-1", "by-hand"]
    assert run_cli("plan", "--repo", str(repo.path), "--detailed-exitcode", env=ENV).exit_code == 0
