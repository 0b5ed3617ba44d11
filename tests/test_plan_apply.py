"""plan / apply / show / list end to end against the embedded keystore, on real Git repositories."""

from __future__ import annotations

import json
import os
import shutil
import stat
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from js7certctl.apply import apply_plan
from js7certctl.errors import ApplyError, BackendError
from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog, LiveEntry, TargetIdentity
from js7certctl.planfile import read_plan
from tests.helpers import EXAMPLES, GitRepo, keystore_of, run_cli

GOLDEN = Path(__file__).parent / "golden"


def cli(repo: GitRepo, *args: str) -> tuple[int, str, str]:
    result = run_cli(*args, "--repo", str(repo.path))
    return result.exit_code, result.stdout, result.stderr


def test_the_readme_loop_on_the_examples(example_repo: GitRepo) -> None:
    code, out, _ = cli(example_repo, "plan", "--detailed-exitcode")
    assert code == 2
    assert out.count("\n  + ") == 3
    assert out.rstrip().endswith("Plan: 3 to add, 0 to change, 0 to delete.")
    assert "-----BEGIN" not in out

    code, out, err = cli(example_repo, "apply", "--auto-approve")
    assert code == 0, err
    assert "Apply complete: 3 added, 0 changed, 0 deleted." in out
    assert "[6/6] assigned agent-batch to Agent subagent-batch-003" in err

    code, out, _ = cli(example_repo, "plan", "--detailed-exitcode")
    assert code == 0
    sha = example_repo.git("rev-parse", "HEAD")
    assert out == (
        "No changes. The keystore of target local matches the manifests at the working tree "
        f"at {sha[:12]}.\n"
    )

    # Editing a manifest's private key path gives one update.
    path = example_repo.path / "certs" / "agent-payments.yaml"
    path.write_text(path.read_text().replace("agent-payments.key", "agent-payments-2.key"))
    code, out, _ = cli(example_repo, "plan", "--detailed-exitcode")
    assert code == 2
    assert "  ~ agent-payments\n" in out
    assert (
        "agent-payments.key -> /var/sos-berlin.com/js7/agent/config/private/agent-payments-2.key"
        in out
    )
    assert out.rstrip().endswith("Plan: 0 to add, 1 to change, 0 to delete.")
    assert cli(example_repo, "apply", "--auto-approve")[0] == 0

    # Removing a manifest gives one delete, which leaves the Job Resource behind.
    (example_repo.path / "certs" / "agent-batch.yaml").unlink()
    code, out, _ = cli(example_repo, "plan", "--detailed-exitcode")
    assert code == 2
    assert "  - agent-batch\n" in out
    assert "/Encryption/agent-batch stays behind in the inventory" in out
    assert out.rstrip().endswith("Plan: 0 to add, 0 to change, 1 to delete.")
    code, out, err = cli(example_repo, "apply", "--auto-approve")
    assert code == 0
    assert "Job Resource /Encryption/agent-batch stays behind" in err
    assert [e.alias for e in keystore_of(example_repo).list_entries()] == [
        "agent-payments",
        "agent-reporting",
    ]


def test_protected_alias_without_manifest_is_a_plan_error(example_repo: GitRepo) -> None:
    config = example_repo.path / "js7certctl.yaml"
    config.write_text(config.read_text().replace('protect: ["prod-*"]', 'protect: ["agent-batch"]'))
    assert cli(example_repo, "apply", "--auto-approve")[0] == 0
    (example_repo.path / "certs" / "agent-batch.yaml").unlink()
    code, out, err = cli(example_repo, "plan", "--detailed-exitcode")
    assert code == 1
    assert out == ""
    assert "alias 'agent-batch' has no manifest, but it is protected by policy.protect" in err
    assert "Traceback" not in err


def test_mass_delete_guard(example_repo: GitRepo) -> None:
    config = example_repo.path / "js7certctl.yaml"
    config.write_text(config.read_text().replace("maxDeletes: 10", "maxDeletes: 1"))
    assert cli(example_repo, "apply", "--auto-approve")[0] == 0
    for name in ("agent-batch", "agent-payments"):
        (example_repo.path / "certs" / f"{name}.yaml").unlink()
    code, _, err = cli(example_repo, "plan")
    assert code == 1
    assert "deletes 2 aliases, more than policy.maxDeletes (1)" in err
    code, out, _ = cli(example_repo, "plan", "--allow-mass-delete", "--detailed-exitcode")
    assert code == 2
    assert "Plan: 0 to add, 0 to change, 2 to delete." in out


def test_saved_plan_is_0600_holds_no_secret_and_applies_without_git(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    # A live entry that holds a private key (JOC would store it): the plan must not copy it.
    from tests import certgen

    key_pem = certgen.private_key_pem(certgen.ec_key("P-256"))
    leaky = keystore_of(example_repo)
    cert = (example_repo.path / "certs" / "agent-payments.crt").read_text()
    leaky.store("agent-payments", key_pem + cert, None, "/Encryption", AuditLog())
    leaky.close()
    plan_path = tmp_path / "plan.json"
    code, out, _ = cli(example_repo, "plan", "--out", str(plan_path))
    assert code == 0
    assert stat.S_IMODE(plan_path.stat().st_mode) == 0o600
    text = plan_path.read_text()
    assert "PRIVATE KEY" not in text
    for line in key_pem.splitlines()[1:-1]:
        assert line not in text
    data = json.loads(text)
    assert data["format_version"] == 1
    assert data["source"]["revision"] == example_repo.git("rev-parse", "HEAD")
    assert data["target"]["backend"] == "local"
    assert "the live entry holds a private key" in out
    # Apply with no Git checkout at all: the plan is self-contained.
    shutil.rmtree(example_repo.path / ".git")
    for name in ("certs", "js7certctl.yaml"):
        target = example_repo.path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    result = run_cli("apply", str(plan_path))
    assert result.exit_code == 0, result.stderr
    assert "Apply complete: 2 added, 1 changed, 0 deleted." in result.stdout
    entries = keystore_of(example_repo).list_entries()
    assert [e.alias for e in entries] == ["agent-batch", "agent-payments", "agent-reporting"]
    assert all("PRIVATE KEY" not in e.certificate for e in entries)


def test_stale_plan_is_refused_naming_the_changed_alias(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    assert cli(example_repo, "apply", "--auto-approve")[0] == 0
    path = example_repo.path / "certs" / "agent-payments.yaml"
    path.write_text(path.read_text().replace("agent-payments.key", "v2.key"))
    plan_path = tmp_path / "plan.json"
    assert cli(example_repo, "plan", "--out", str(plan_path))[0] == 0
    # Somebody else changes the keystore after the plan was made.
    other = keystore_of(example_repo)
    other.add_assignment("agent-reporting", "agent-new")
    before = other.list_entries()
    other.close()
    result = run_cli("apply", str(plan_path))
    assert result.exit_code == 1
    assert "the plan is stale" in result.stderr
    assert "(agent-reporting)" in result.stderr
    after = keystore_of(example_repo).list_entries()
    assert after == before  # nothing was written


def test_writes_outside_the_scope_never_make_a_plan_stale(
    example_repo: GitRepo, tmp_path: Path
) -> None:
    config = example_repo.path / "js7certctl.yaml"
    config.write_text(config.read_text().replace('scope: ["*"]', 'scope: ["agent-*"]'))
    plan_path = tmp_path / "plan.json"
    assert cli(example_repo, "plan", "--out", str(plan_path))[0] == 0
    other = keystore_of(example_repo)
    cert = (example_repo.path / "certs" / "agent-payments.crt").read_text()
    other.store("someone-else", cert, None, "/Other", AuditLog())
    other.close()
    result = run_cli("apply", str(plan_path))
    assert result.exit_code == 0, result.stderr
    assert "someone-else" in [e.alias for e in keystore_of(example_repo).list_entries()]


class FailingKeystore:
    """Narrow seam: forwards to a real LocalKeystore, but the Nth write raises like a backend
    failure would. Used only to stop an apply at a chosen point."""

    def __init__(self, inner: LocalKeystore, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.writes = 0

    @property
    def identity(self) -> TargetIdentity:
        return self.inner.identity

    def list_entries(self) -> list[LiveEntry]:
        return self.inner.list_entries()

    def _count(self) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise BackendError("injected failure: the keystore is unavailable")

    def store(
        self,
        alias: str,
        certificate: str,
        private_key_path: str | None,
        job_resource_folder: str,
        audit: AuditLog,
    ) -> None:
        self._count()
        self.inner.store(alias, certificate, private_key_path, job_resource_folder, audit)

    def delete(self, alias: str, audit: AuditLog) -> None:
        self._count()
        self.inner.delete(alias, audit)

    def add_assignment(self, alias: str, agent_id: str) -> None:
        self._count()
        self.inner.add_assignment(alias, agent_id)

    def remove_assignment(self, alias: str, agent_id: str) -> None:
        self._count()
        self.inner.remove_assignment(alias, agent_id)

    def writer(self, audit: AuditLog) -> AbstractContextManager[None]:
        return self.inner.writer(audit)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("fail_at", [1, 2, 4, 6])
def test_failure_at_the_nth_write_then_replan_shows_exactly_the_rest(
    example_repo: GitRepo, tmp_path: Path, fail_at: int
) -> None:
    plan_path = tmp_path / "plan.json"
    assert cli(example_repo, "plan", "--out", str(plan_path))[0] == 0
    plan = read_plan(plan_path)
    failing = FailingKeystore(keystore_of(example_repo), fail_at)
    with pytest.raises(ApplyError) as info:
        apply_plan(plan, failing, AuditLog())
    message = str(info.value)
    assert f"Applied ({fail_at - 1}):" in message
    assert f"Not applied ({6 - fail_at + 1}):" in message
    assert "injected failure" in message
    failing.close()
    code, out, _ = cli(example_repo, "plan", "--detailed-exitcode")
    assert code == 2
    steps = ["agent-batch", "agent-payments", "agent-reporting"]
    created = steps[: min(fail_at - 1, 3)]
    for alias in steps:
        if alias in created:
            assert f"  + {alias}\n" not in out
        else:
            assert f"  + {alias}\n" in out
    if fail_at > 3:
        # agent-batch exists; its missing assignments show as one update
        assigned = fail_at - 4
        assert "  ~ agent-batch\n" in out
        assert f"Plan: {3 - len(created)} to add, 1 to change" in out
        assert out.count("+ agent-batch-0") + out.count("+ subagent-batch") == 3 - assigned
    assert cli(example_repo, "apply", "--auto-approve")[0] == 0
    assert cli(example_repo, "plan", "--detailed-exitcode")[0] == 0


def test_a_concurrent_apply_is_blocked_by_the_lock(example_repo: GitRepo) -> None:
    holder = keystore_of(example_repo)
    with holder.writer(AuditLog(comment="held by the test")):
        result = run_cli(
            "apply", "--auto-approve", "--lock-timeout", "0.3", "--repo", str(example_repo.path)
        )
    holder.close()
    assert result.exit_code == 1
    assert f"pid {os.getpid()}" in result.stderr
    assert keystore_of(example_repo).list_entries() == []
    assert run_cli("apply", "--auto-approve", "--repo", str(example_repo.path)).exit_code == 0


def test_apply_without_terminal_or_auto_approve_is_an_error(example_repo: GitRepo) -> None:
    code, _, err = cli(example_repo, "apply")
    assert code == 1
    assert "no terminal to confirm" in err
    assert keystore_of(example_repo).list_entries() == []


def test_apply_asks_and_only_yes_applies(
    example_repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Narrow seam: CliRunner's stdin is not a terminal; pretend it is to reach the prompt.
    monkeypatch.setattr("js7certctl.cli._stdin_is_terminal", lambda: True)
    from typer.testing import CliRunner

    from js7certctl.cli import app

    runner = CliRunner()
    no = runner.invoke(app, ["apply", "--repo", str(example_repo.path)], input="y\n")
    assert no.exit_code == 1
    assert "Apply cancelled; nothing was changed." in no.stderr
    assert keystore_of(example_repo).list_entries() == []
    yes = runner.invoke(app, ["apply", "--repo", str(example_repo.path)], input="yes\n")
    assert yes.exit_code == 0, yes.stderr
    assert len(keystore_of(example_repo).list_entries()) == 3


def test_list_and_show(example_repo: GitRepo, tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    assert cli(example_repo, "plan", "--out", str(plan_path))[0] == 0
    for fmt, marker in (
        ("text", "Plan: 3 to add"),
        ("json", '"format_version": 1'),
        ("markdown", "| + | `agent-batch`"),
    ):
        result = run_cli("show", str(plan_path), "--format", fmt)
        assert result.exit_code == 0
        assert marker in result.stdout
    assert cli(example_repo, "apply", str(plan_path))[0] == 0
    code, out, _ = cli(example_repo, "list", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [e["alias"] for e in data["entries"]] == [
        "agent-batch",
        "agent-payments",
        "agent-reporting",
    ]
    assert data["entries"][0]["agents"] == [
        "agent-batch-001",
        "agent-batch-002",
        "subagent-batch-003",
    ]
    assert data["entries"][2]["jobResourceFolder"] == "/Encryption/Reporting"
    assert data["entries"][2]["facts"]["curve"] == "P-256"
    code, out, _ = cli(example_repo, "list")
    assert code == 0
    assert "3 aliases" in out
    assert "-----BEGIN" not in out


def test_bad_plan_files(tmp_path: Path) -> None:
    cases = {
        "truncated.json": '{"kind": "js7certctl-plan", "format_version": 1, "chan',
        "other.json": '{"hello": 1}',
        "future.json": '{"kind": "js7certctl-plan", "format_version": 99}',
        "incomplete.json": '{"kind": "js7certctl-plan", "format_version": 1}',
    }
    messages = {
        "truncated.json": "damaged or truncated",
        "other.json": "is not a js7certctl plan file",
        "future.json": "has format_version 99",
        "incomplete.json": "is damaged or incomplete",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        for command in ("show", "apply"):
            result = run_cli(command, str(tmp_path / name))
            assert result.exit_code == 1, (name, command)
            assert messages[name] in result.stderr
            assert "Traceback" not in result.output
    missing = run_cli("apply", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr


def test_plan_for_another_target_is_refused(example_repo: GitRepo, tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    assert cli(example_repo, "plan", "--out", str(plan_path))[0] == 0
    result = run_cli("apply", str(plan_path), "--target", "prod")
    assert result.exit_code == 1
    assert "was made for target 'local'" in result.stderr


def test_exit_codes_row_by_row(example_repo: GitRepo, tmp_path: Path) -> None:
    rows = [
        (["plan", "--detailed-exitcode"], 2),  # changes
        (["plan"], 0),  # changes, no detailed exit code
        (["plan", "--format", "html"], 64),  # usage error
        (["plan", "--bogus"], 64),
        (["apply"], 1),  # no terminal
        (["apply", "--auto-approve"], 0),
        (["plan", "--detailed-exitcode"], 0),  # no changes
        (["validate"], 0),
    ]
    for args, expected in rows:
        assert cli(example_repo, *args)[0] == expected, args
    (example_repo.path / "certs" / "broken.yaml").write_text("kind: [\n")
    assert cli(example_repo, "plan", "--detailed-exitcode")[0] == 1  # invalid manifests
    assert cli(example_repo, "validate")[0] == 1


# ----------------------------------------------------------------------------- golden renderings


@pytest.fixture
def mixed_plan(tmp_path: Path) -> Path:
    """A deterministic mixed plan (create, update, delete) made from the example certificates."""
    from js7certctl.config import Policy
    from js7certctl.diff import diff
    from js7certctl.manifest import load_manifests
    from js7certctl.planfile import Guards, Plan, live_fingerprint, write_plan
    from js7certctl.source import SourceInfo, WorktreeSource

    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    info = SourceInfo(
        repository="/repo",
        revision="0123456789abcdef0123456789abcdef01234567",
        ref="main",
        dirty=False,
    )
    source = WorktreeSource(EXAMPLES, info)
    loaded = load_manifests(
        source,
        base="",
        entries=["certs"],
        config_path="js7certctl.yaml",
        job_resource_folder="/Encryption",
        policy=Policy(),
        now=now,
    )
    reporting = (EXAMPLES / "certs" / "agent-batch.crt").read_text()
    live = [
        LiveEntry(
            "agent-payments", reporting, "/old/agent-payments.key", "/Encryption", ("agent-9",)
        ),
        LiveEntry(
            "agent-reporting",
            next(c.certificate for c in loaded.certs if c.alias == "agent-reporting"),
            "/var/sos-berlin.com/js7/agent/config/private/agent-reporting.key",
            "/Encryption/Reporting",
            (),
        ),
        LiveEntry("retired-agent", reporting, None, "/Encryption", ("agent-7",)),
    ]
    result = diff(loaded.certs, live, Policy())
    plan = Plan(
        source=info,
        target=TargetIdentity("local", "local", "/repo/.js7certctl/keystore.db"),
        connection={"path": "/repo/.js7certctl/keystore.db"},
        guards=Guards.from_policy(Policy(), allow_mass_delete=False),
        changes=result.actionable,
        unchanged=len(result.changes) - len(result.actionable),
        live_fingerprint=live_fingerprint(live, Policy()),
        created=now,
        tool_version="0.1.0",
    )
    path = tmp_path / "mixed.json"
    write_plan(plan, path)
    return path


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_golden_mixed_plan(mixed_plan: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from js7certctl.planfile import read_plan
    from js7certctl.render.plan import render

    plan = read_plan(mixed_plan)
    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    rendered = render(plan, fmt, now)
    golden = GOLDEN / f"mixed-plan.{ {'text': 'txt', 'json': 'json', 'markdown': 'md'}[fmt] }"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert rendered == golden.read_text()
    assert "1 to add, 1 to change, 1 to delete" in rendered or fmt == "json"
