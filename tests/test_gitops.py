"""The GitOps workflow: PR comments, --base, CI integration, import, drift, several targets."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from js7certctl.model import AuditLog
from tests import certgen
from tests.helpers import EXAMPLES, PROJECT_ROOT, GitRepo, keystore_of, manifest, run_cli

GOLDEN = Path(__file__).parent / "golden"


# ----------------------------------------------------------------------------- --base


def test_base_shows_what_the_pull_request_changes(example_repo: GitRepo) -> None:
    base = example_repo.git("rev-parse", "HEAD")
    assert run_cli("apply", "--auto-approve", "--repo", str(example_repo.path)).exit_code == 0
    example_repo.git("checkout", "-q", "-b", "feature")
    payments = example_repo.path / "certs" / "agent-payments.yaml"
    payments.write_text(payments.read_text().replace("agent-payments.key", "v2.key"))
    (example_repo.path / "certs" / "agent-batch.yaml").unlink()
    example_repo.write(
        "certs/new-agent.yaml", manifest("new-agent", certificate=certgen.make_cert(cn="new-agent"))
    )
    example_repo.commit("pr")
    args = ["plan", "--repo", str(example_repo.path), "--ref", "HEAD", "--base", base]
    text = run_cli(*args)
    assert text.exit_code == 0, text.stderr
    assert f"Manifest changes since {base} ({base[:12]}):" in text.stdout
    assert "  - agent-batch (removed) in certs/agent-batch.yaml" in text.stdout
    assert "  ~ agent-payments (edited: privateKeyPath) in certs/agent-payments.yaml" in text.stdout
    assert "  + new-agent (added) in certs/new-agent.yaml" in text.stdout
    assert "Plan: 1 to add, 1 to change, 1 to delete." in text.stdout
    md = run_cli(*args, "--format", "markdown").stdout
    assert "**What this pull request changes in the manifests**" in md
    assert "| ~ | `agent-payments` | edited: privateKeyPath | `certs/agent-payments.yaml` |" in md
    assert md.index("What this pull request changes") < md.index("What apply will do")
    data = json.loads(run_cli(*args, "--format", "json").stdout)
    assert [(m["alias"], m["kind"]) for m in data["pullRequest"]["manifestChanges"]] == [
        ("agent-batch", "removed"),
        ("agent-payments", "edited"),
        ("new-agent", "added"),
    ]
    assert data["pullRequest"]["base"]["revision"] == base


def test_base_without_manifests_lists_everything_as_added(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "fresh")
    repo.write("README.md", "nothing yet\n")
    base = repo.commit("empty")
    repo.write("a.yaml", manifest("agent-a", certificate=certgen.make_cert(cn="agent-a")))
    repo.commit("first manifest")
    result = run_cli("plan", "--repo", str(repo.path), "--ref", "HEAD", "--base", base)
    assert result.exit_code == 0, result.stderr
    assert "  + agent-a (added) in a.yaml" in result.stdout


# ----------------------------------------------------------------------------- markdown


def test_markdown_of_a_huge_plan_is_truncated_under_the_cap(tmp_path: Path) -> None:
    from js7certctl import certs
    from js7certctl.config import Policy
    from js7certctl.diff import diff
    from js7certctl.model import DesiredCert, TargetIdentity
    from js7certctl.planfile import Guards, Plan
    from js7certctl.render.plan import MARKDOWN_LIMIT, render_markdown
    from js7certctl.source import SourceInfo

    parsed, _ = certs.parse_certificate_text(
        (EXAMPLES / "certs" / "agent-payments.crt").read_text()
    )
    assert parsed is not None
    desired = [
        DesiredCert(
            f"agent-{i:05d}",
            parsed.pem,
            f"/keys/{i}.key",
            "/Encryption",
            ("agent-x",),
            parsed.facts,
        )
        for i in range(5000)
    ]
    result = diff(desired, [], Policy())
    plan = Plan(
        source=SourceInfo("/repo", "0123456789abcdef0123456789abcdef01234567", "main", False),
        target=TargetIdentity("prod", "joc", "https://joc.example.com:4443"),
        connection={},
        guards=Guards(),
        changes=result.actionable,
        unchanged=0,
        live_fingerprint={},
        created=datetime(2027, 1, 1, tzinfo=UTC),
        tool_version="0.1.0",
    )
    rendered = render_markdown(plan, datetime(2027, 1, 1, tzinfo=UTC))
    assert len(rendered) <= MARKDOWN_LIMIT
    assert "truncated" in rendered
    assert rendered.startswith(
        "### js7certctl plan for `prod`: 5000 to add, 0 to change, 0 to delete"
    )
    golden = GOLDEN / "huge-plan-tail.md"
    tail = rendered[-400:]
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(tail)
    assert tail == golden.read_text()


def test_markdown_error_comment(example_repo: GitRepo) -> None:
    example_repo.write("certs/broken.yaml", "kind: [\n")
    result = run_cli("plan", "--repo", str(example_repo.path), "--format", "markdown")
    assert result.exit_code == 1
    assert result.stdout.startswith("### js7certctl plan for `(default)`: failed")
    assert "certs/broken.yaml:2:1: error: invalid YAML" in result.stdout


# ----------------------------------------------------------------------------- CI integration


def test_validate_github_and_codeclimate_formats(
    example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_repo.write(
        "certs/bad.yaml",
        manifest("bad alias", certificate=certgen.make_cert(), private_key_path=None),
    )
    github = run_cli("validate", "--repo", str(example_repo.path), "--format", "github")
    assert github.exit_code == 1
    lines = github.stdout.splitlines()
    assert lines[0].startswith(
        "::error file=certs/bad.yaml,line=4,col=10,title=js7certctl alias-name::"
    )
    assert any(line.startswith("::warning file=certs/bad.yaml,line=5,") for line in lines)
    codeclimate = run_cli("validate", "--repo", str(example_repo.path), "--format", "codeclimate")
    issues = json.loads(codeclimate.stdout)
    assert {
        (i["check_name"], i["severity"], i["location"]["path"], i["location"]["lines"]["begin"])
        for i in issues
    } == {
        ("js7certctl/alias-name", "major", "certs/bad.yaml", 4),
        ("js7certctl/private-key-path", "minor", "certs/bad.yaml", 5),
    }
    assert len({i["fingerprint"] for i in issues}) == 2
    # Under GitHub Actions the text report carries annotations too.
    text = run_cli("validate", "--repo", str(example_repo.path), env={"GITHUB_ACTIONS": "true"})
    assert "::error file=certs/bad.yaml,line=4" in text.stdout
    assert "Invalid: 1 error, 1 warning." in text.stdout


def test_audit_defaults_from_github_actions(example_repo: GitRepo, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.example.com",
        "GITHUB_REPOSITORY": "acme/certs",
        "GITHUB_RUN_ID": "777",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": "abc",
    }
    no_approve = run_cli("apply", "--repo", str(example_repo.path), env=env)
    assert no_approve.exit_code == 1
    assert "input is off" in no_approve.stderr
    result = run_cli("apply", "--auto-approve", "--repo", str(example_repo.path), env=env)
    assert result.exit_code == 0, result.stderr
    db = sqlite3.connect(example_repo.path / ".js7certctl" / "keystore.db")
    rows = set(db.execute("SELECT comment, ticket_link FROM audit WHERE action = 'store'"))
    db.close()
    sha = example_repo.git("rev-parse", "HEAD")[:12]
    assert rows == {
        (
            f"js7certctl apply {sha} (pipeline https://github.example.com/acme/certs/actions/runs/777)",
            "https://github.example.com/acme/certs/pull/42",
        )
    }


def test_audit_defaults_from_gitlab_and_explicit_options_win(example_repo: GitRepo) -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_PROJECT_URL": "https://gitlab.example.com/acme/certs",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_PIPELINE_URL": "https://gitlab.example.com/acme/certs/-/pipelines/9",
    }
    result = run_cli(
        "apply", "--auto-approve", "--comment", "by hand", "--repo", str(example_repo.path), env=env
    )
    assert result.exit_code == 0, result.stderr
    db = sqlite3.connect(example_repo.path / ".js7certctl" / "keystore.db")
    rows = set(db.execute("SELECT comment, ticket_link FROM audit WHERE action = 'store'"))
    db.close()
    assert rows == {("by hand", "https://gitlab.example.com/acme/certs/-/merge_requests/7")}


def _shim(tmp_path: Path) -> Path:
    """A `js7certctl` executable on PATH that runs this checkout."""
    folder = tmp_path / "bin"
    folder.mkdir()
    shim = folder / "js7certctl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m js7certctl "$@"\n')
    shim.chmod(0o755)
    return folder


def test_the_github_actions_example_runs_against_the_embedded_keystore(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    workflow = YAML(typ="safe").load(
        (PROJECT_ROOT / "examples" / "ci" / "github-actions.yml").read_text()
    )
    skip = {"install js7certctl", "find the plan of the merged pull request"}

    def steps(job: str) -> list[str]:
        return [
            s["run"]
            for s in workflow["jobs"][job]["steps"]
            if "run" in s and s.get("name") not in skip
        ]

    base = example_repo.git("rev-parse", "HEAD")
    example_repo.write(
        "certs/new-agent.yaml", manifest("new-agent", certificate=certgen.make_cert(cn="new-agent"))
    )
    example_repo.commit("pr")
    work = tmp_path / "runner"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{_shim(tmp_path)}:{os.environ['PATH']}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "TARGET": "local",
        "CERTS_DIR": str(example_repo.path),
        "BASE_REF": base,
    }

    def run(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    (validate,) = steps("validate")
    assert run(validate).returncode == 0
    (plan,) = steps("plan")
    planned = run(plan)
    assert planned.returncode == 0, planned.stderr
    comment = (work / "plan.md").read_text()
    assert comment.startswith("### js7certctl plan for `local`: 4 to add, 0 to change, 0 to delete")
    assert "  + new-agent (added)" not in comment  # markdown table, not text
    assert "| + | `new-agent` | added | `certs/new-agent.yaml` |" in comment
    assert stat.S_IMODE((work / "plan.json").stat().st_mode) == 0o600
    (apply,) = steps("apply")
    applied = run(apply)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 4 added, 0 changed, 0 deleted." in applied.stdout
    # A second apply of the same plan is refused: the keystore moved on.
    again = run(apply)
    assert again.returncode == 1
    assert "the plan is stale" in again.stderr


def test_pre_commit_hook_definition() -> None:
    hooks = YAML(typ="safe").load((PROJECT_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["entry"] == "js7certctl validate"
    assert hooks[0]["pass_filenames"] is False


# ----------------------------------------------------------------------------- import


def test_import_then_plan_is_empty(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "adopt")
    repo.write("js7certctl.yaml", "manifests: [certs/]\n")
    repo.commit("config")
    store = keystore_of(repo)
    cert = certgen.make_cert(cn="a")
    rewrapped = cert.replace("\n", "\r\n")
    store.store("agent-a", rewrapped, "/keys/a.key", "/Encryption", AuditLog())
    store.store(
        "agent-b",
        certgen.make_cert(certgen.rsa_key(2048), cn="b"),
        None,
        "/Elsewhere/Sub",
        AuditLog(),
    )
    store.add_assignment("agent-b", "agent 7")
    store.add_assignment("agent-b", "agent-001")
    store.store(
        "leaky", certgen.private_key_pem(certgen.ec_key()) + cert, None, "/Encryption", AuditLog()
    )
    store.close()
    result = run_cli("import", "--repo", str(repo.path))
    assert result.exit_code == 1  # one alias refused
    assert result.stdout == "wrote certs/agent-a.yaml\nwrote certs/agent-b.yaml\n"
    assert "leaky: not imported: the live entry holds a private key" in result.stderr
    text_b = (repo.path / "certs" / "agent-b.yaml").read_text()
    assert "jobResourceFolder: /Elsewhere/Sub" in text_b
    assert "- agent 7" in text_b
    assert "privateKeyPath" not in text_b
    assert "PRIVATE KEY" not in (repo.path / "certs" / "agent-a.yaml").read_text()
    # Without the leaky alias in scope the next plan is empty.
    (repo.path / "js7certctl.yaml").write_text(
        "manifests: [certs/]\npolicy: {scope: ['agent-*']}\n"
    )
    plan = run_cli("plan", "--repo", str(repo.path), "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    # Import again: nothing to do, and nothing overwritten.
    again = run_cli("import", "--repo", str(repo.path))
    assert again.exit_code == 0
    assert "Nothing to import" in again.stderr


def test_import_picks_aliases_and_never_overwrites(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "adopt")
    store = keystore_of(repo)
    for name in ("one", "two"):
        store.store(name, certgen.make_cert(cn=name), "/k", "/Encryption", AuditLog())
    store.close()
    repo.write("two.yaml", "# somebody's notes\n")
    repo.write("js7certctl.yaml", "manifests: [two.yaml]\n")
    # The only manifest is broken (not a manifest): import refuses to guess.
    assert run_cli("import", "--repo", str(repo.path)).exit_code == 1
    repo.remove("two.yaml")
    repo.write("js7certctl.yaml", "manifests: [.]\n")
    picked = run_cli("import", "--repo", str(repo.path), "--alias", "one")
    assert picked.exit_code == 0, picked.stderr
    assert picked.stdout == "wrote one.yaml\n"
    # A file of that name exists (a manifest of another alias): it is never overwritten.
    other = manifest("something-else", certificate=certgen.make_cert(cn="x"))
    repo.write("stray/two.yaml", other)
    repo.write("js7certctl.yaml", "manifests: [stray/, one.yaml]\n")
    refused = run_cli("import", "--repo", str(repo.path), "--alias", "two")
    assert refused.exit_code == 1
    assert "two: not imported: stray/two.yaml exists" in refused.stderr
    assert (repo.path / "stray" / "two.yaml").read_text() == other
    unknown = run_cli("import", "--repo", str(repo.path), "--alias", "nope")
    assert unknown.exit_code == 64
    assert "no such alias in target local: nope" in unknown.stderr


# ----------------------------------------------------------------------------- drift


def test_drift_reports_hand_edits_and_nothing_otherwise(example_repo: GitRepo) -> None:
    assert run_cli("apply", "--auto-approve", "--repo", str(example_repo.path)).exit_code == 0
    clean = run_cli("drift", "--repo", str(example_repo.path))
    assert clean.exit_code == 0
    assert clean.stdout.startswith("No drift: target local matches the manifests at HEAD")
    # The working tree is never read: an uncommitted edit is not drift.
    payments = example_repo.path / "certs" / "agent-payments.yaml"
    payments.write_text(payments.read_text().replace("agent-payments.key", "dirty.key"))
    assert run_cli("drift", "--repo", str(example_repo.path)).exit_code == 0
    # Hand edits in the keystore are.
    store = keystore_of(example_repo)
    store.store(
        "agent-payments",
        (example_repo.path / "certs" / "agent-payments.crt").read_text(),
        "/by/hand.key",
        "/Encryption",
        AuditLog(),
    )
    store.delete("agent-reporting", AuditLog())
    store.store("rogue", certgen.make_cert(cn="rogue"), None, "/Encryption", AuditLog())
    store.remove_assignment("agent-batch", "agent-batch-002")
    store.close()
    drifted = run_cli("drift", "--repo", str(example_repo.path))
    assert drifted.exit_code == 2
    assert "in 4 alias(es)" in drifted.stdout
    assert (
        "  agent-batch: edited outside Git: agents\n      agents: agent-batch-002 only in Git"
        in drifted.stdout
    )
    assert (
        "privateKeyPath: Git /var/sos-berlin.com/js7/agent/config/private/agent-payments.key, "
        "keystore /by/hand.key" in drifted.stdout
    )
    assert "  agent-reporting: in Git but not in the keystore" in drifted.stdout
    assert "  rogue: in the keystore but not in Git (added outside Git)" in drifted.stdout
    data = json.loads(run_cli("drift", "--repo", str(example_repo.path), "--format", "json").stdout)
    assert data["drift"] is True
    assert [(i["alias"], i["kind"]) for i in data["items"]] == [
        ("agent-batch", "edited"),
        ("agent-payments", "edited"),
        ("agent-reporting", "missing"),
        ("rogue", "unmanaged"),
    ]


# ----------------------------------------------------------------------------- several targets


def test_all_targets_one_report(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "multi")
    cert = certgen.make_cert(cn="shared")
    repo.write(
        "staging/a.yaml", manifest("agent-a", certificate=cert, private_key_path="/staging/a.key")
    )
    repo.write("prod/a.yaml", manifest("agent-a", certificate=cert, private_key_path="/prod/a.key"))
    repo.write("prod/b.yaml", manifest("agent-b", certificate=cert))
    repo.write(
        "js7certctl.yaml",
        "manifests: [staging/]\n"
        "targets:\n"
        "  local: {backend: local, path: .js7certctl/staging.db}\n"
        "  prod:\n"
        "    backend: local\n"
        "    path: .js7certctl/prod.db\n"
        "    manifests: [prod/]\n"
        "    defaults: {jobResourceFolder: /Prod}\n",
    )
    result = run_cli("plan", "--repo", str(repo.path), "--all-targets", "--detailed-exitcode")
    assert result.exit_code == 2, result.stderr
    assert "== target local ==" in result.stdout
    assert "== target prod ==" in result.stdout
    assert "Plan: 1 to add, 0 to change, 0 to delete." in result.stdout
    assert "Plan: 2 to add, 0 to change, 0 to delete." in result.stdout
    assert "/Prod" in result.stdout
    data = json.loads(
        run_cli("plan", "--repo", str(repo.path), "--all-targets", "-f", "json").stdout
    )
    assert [p["target"]["name"] for p in data["plans"]] == ["local", "prod"]
    md = run_cli("plan", "--repo", str(repo.path), "--all-targets", "-f", "markdown").stdout
    assert md.count("### js7certctl plan for") == 2
    assert (
        run_cli("plan", "--repo", str(repo.path), "--all-targets", "--target", "prod").exit_code
        == 64
    )
    for target in ("local", "prod"):
        assert (
            run_cli(
                "apply", "--auto-approve", "--target", target, "--repo", str(repo.path)
            ).exit_code
            == 0
        )
    done = run_cli("plan", "--repo", str(repo.path), "--all-targets", "--detailed-exitcode")
    assert done.exit_code == 0


def test_every_command_has_help_with_an_example() -> None:
    from typer.main import get_command

    from js7certctl.cli import app

    group = get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"validate", "plan", "apply", "show", "list", "init", "import", "drift"} <= set(names)
    for name in names:
        result = run_cli(name, "--help")
        assert result.exit_code == 0, name
        if name != "keys":
            assert "Example" in result.stdout, name
