"""plan / apply / list end to end through the CLI against the JOC emulator (a `joc` target)."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from js7certctl.apply import apply_plan
from js7certctl.keystore.factory import BackendOptions, open_keystore
from js7certctl.keystore.joc import JocKeystore
from js7certctl.model import AuditLog
from js7certctl.planfile import read_plan
from tests import certgen
from tests.helpers import GitRepo, Run, manifest, run_cli
from tests.joc_emulator import ALL_PERMISSIONS, VIEW_PERMISSIONS, Account, JocEmulator
from tests.joc_emulator.fixture import joc_emulator_fixture  # noqa: F401
from tests.tls_pki import Pki, make_pki

PASSWORD = "Pw-7f3c!cli-secret"
ENV = {"JS7_USER": "ci", "JS7_PASSWORD": PASSWORD}
STORE = "encipherment/certificate/store"
KEY_DIR = "/var/sos-berlin.com/js7/agent/config/private"


@functools.cache
def cert(index: int) -> str:
    """A distinct real certificate per index (cached: the same text on every call)."""
    return certgen.make_cert(certgen.ec_key("P-256", variant=index), cn=f"agent-{index}")


@pytest.fixture
def joc(joc_emulator: JocEmulator) -> JocEmulator:
    """The emulator with an account `ci` and quick deployments."""
    joc_emulator.config.deploy_delay = 0.01
    joc_emulator.config.accounts["ci"] = Account(PASSWORD, ALL_PERMISSIONS)
    return joc_emulator


@pytest.fixture
def tokens(joc: JocEmulator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every session token the emulator hands out (to look for them in outputs)."""
    handed_out: list[str] = []
    create_session = joc.api.create_session

    def recording(account: str, *, via: str = "basic") -> str:
        token = create_session(account, via=via)
        handed_out.append(token)
        return token

    monkeypatch.setattr(joc.api, "create_session", recording)
    return handed_out


def write_config(repo: GitRepo, target: str) -> None:
    repo.write(
        "js7certctl.yaml",
        "manifests: [certs/]\n"
        "defaults: {jobResourceFolder: /Encryption}\n"
        "targets:\n"
        "  local: {backend: local, path: .js7certctl/keystore.db}\n"
        f"  prod: {target}\n"
        "defaultTarget: local\n",
    )


def write_manifest(repo: GitRepo, alias: str, index: int, **kwargs: Any) -> None:
    kwargs.setdefault("private_key_path", f"{KEY_DIR}/{alias}.key")
    repo.write(f"certs/{alias}.yaml", manifest(alias, certificate=cert(index), **kwargs))


@pytest.fixture
def certs_repo(repo: GitRepo, joc: JocEmulator) -> GitRepo:
    """Two manifests and a `prod` target on the emulator (not the default target)."""
    write_config(repo, f'{{backend: joc, url: "{joc.base_url}"}}')
    write_manifest(repo, "agent-a", 1)
    write_manifest(repo, "agent-b", 2, agents=["agent-1", "agent-2"])
    repo.commit("two certificates")
    return repo


def cli(repo: GitRepo, *args: str, env: dict[str, str] | None = None) -> Run:
    env = ENV if env is None else env
    return run_cli(*args, "--repo", str(repo.path), "--target", "prod", env=env)


def errors_of(run: Run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("Error:")]


def assert_logged_out(joc: JocEmulator) -> None:
    logins = [c for c in joc.calls if c.endpoint == "authentication/login"]
    logouts = [c for c in joc.calls if c.endpoint == "authentication/logout"]
    assert joc.calls[-1].endpoint == "authentication/logout"
    assert len(logouts) >= 1
    assert len(logins) >= 1
    assert joc.state.sessions == {}


# -- the loop ---------------------------------------------------------------------------------


def test_plan_apply_replan_update_and_delete(certs_repo: GitRepo, joc: JocEmulator) -> None:
    run = cli(certs_repo, "plan", "--detailed-exitcode")
    assert run.exit_code == 2, run.stderr
    assert "  + agent-a\n" in run.stdout
    assert run.stdout.rstrip().endswith("Plan: 2 to add, 0 to change, 0 to delete.")
    assert "is plain http://" in run.stderr  # the emulator speaks http
    assert_logged_out(joc)

    run = cli(certs_repo, "apply", "--auto-approve")
    assert run.exit_code == 0, run.stderr
    assert "Apply complete: 2 added, 0 changed, 0 deleted." in run.stdout
    assert "[4/4] assigned agent-b to Agent agent-2" in run.stderr
    assert joc.state.certificates["agent-a"] == {
        "certificate": cert(1),
        "privateKeyPath": f"{KEY_DIR}/agent-a.key",
    }
    assert joc.state.assignments == {"agent-b": {"agent-1", "agent-2"}}
    revision = certs_repo.git("rev-parse", "HEAD")[:12]
    assert {e["comment"] for e in joc.state.audit_log} == {f"js7certctl apply {revision}"}
    assert all(r["deployed"] for r in joc.state.job_resources.values())  # awaited, then logout
    assert_logged_out(joc)

    run = cli(certs_repo, "plan", "--detailed-exitcode")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("No changes.")

    # An update: a new private key path and a folder move.
    write_manifest(certs_repo, "agent-a", 1, private_key_path=f"{KEY_DIR}/agent-a-2.key")
    write_manifest(
        certs_repo, "agent-b", 2, agents=["agent-1", "agent-2"], job_resource_folder="/Moved"
    )
    run = cli(certs_repo, "plan", "--detailed-exitcode")
    assert run.exit_code == 2
    assert "  ~ agent-a\n" in run.stdout
    assert "  ~ agent-b\n      jobResourceFolder: /Encryption -> /Moved\n" in run.stdout
    assert run.stdout.rstrip().endswith("Plan: 0 to add, 2 to change, 0 to delete.")
    assert cli(certs_repo, "apply", "--auto-approve").exit_code == 0
    assert joc.state.certificates["agent-a"]["privateKeyPath"] == f"{KEY_DIR}/agent-a-2.key"
    assert joc.state.job_resources["agent-b"]["folder"] == "/Moved"

    # A delete: the Job Resource stays behind, and both plan and apply say so.
    certs_repo.remove("certs/agent-b.yaml")
    run = cli(certs_repo, "plan", "--detailed-exitcode")
    assert run.exit_code == 2
    assert "  - agent-b\n" in run.stdout
    assert "/Moved/agent-b stays behind in the inventory" in run.stdout
    run = cli(certs_repo, "apply", "--auto-approve")
    assert run.exit_code == 0, run.stderr
    assert "Job Resource /Moved/agent-b stays behind" in run.stderr
    assert run.stderr.count("agent-b stays behind") == 1  # reported once
    assert sorted(joc.state.certificates) == ["agent-a"]
    assert "agent-b" in joc.state.job_resources
    assert joc.state.assignments == {}
    assert cli(certs_repo, "plan", "--detailed-exitcode").exit_code == 0


def test_assignments_are_added_and_removed(certs_repo: GitRepo, joc: JocEmulator) -> None:
    assert cli(certs_repo, "apply", "--auto-approve").exit_code == 0
    write_manifest(certs_repo, "agent-b", 2, agents=["agent-2", "agent-3"])
    joc.clear_calls()

    run = cli(certs_repo, "plan", "--detailed-exitcode")
    assert run.exit_code == 2
    assert "  ~ agent-b\n" in run.stdout
    assert "+ agent-3, - agent-1" in run.stdout
    run = cli(certs_repo, "apply", "--auto-approve")
    assert run.exit_code == 0, run.stderr

    assert joc.state.assignments == {"agent-b": {"agent-2", "agent-3"}}
    assert joc.calls_to(STORE) == []  # assignments alone need no store
    assert [c.status for c in joc.calls_to("encipherment/assignment/add")] == [200]
    assert [c.status for c in joc.calls_to("encipherment/assignment/remove")] == [200]
    assert cli(certs_repo, "plan", "--detailed-exitcode").exit_code == 0


def test_list_shows_the_live_keystore(certs_repo: GitRepo, joc: JocEmulator) -> None:
    joc.state.put_certificate("legacy", cert(3), None, "/Old")
    run = cli(certs_repo, "list", "--format", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert [(e["alias"], e["jobResourceFolder"]) for e in data["entries"]] == [("legacy", "/Old")]
    assert_logged_out(joc)
    run = cli(certs_repo, "list")
    assert run.exit_code == 0
    assert "legacy" in run.stdout
    assert "-----BEGIN" not in run.stdout


# -- saved and stale plans --------------------------------------------------------------------


def test_a_saved_plan_applies_without_git_and_holds_no_secret(
    certs_repo: GitRepo, joc: JocEmulator, tokens: list[str], tmp_path: Path
) -> None:
    plan_path = tmp_path / "plan.json"
    assert cli(certs_repo, "plan", "--out", str(plan_path)).exit_code == 0
    text = plan_path.read_text()
    data = json.loads(text)
    assert data["target"]["backend"] == "joc"
    assert data["target"]["location"] == joc.base_url
    assert data["target"]["connection"] == {"url": joc.base_url}
    shutil.rmtree(certs_repo.path)

    run = run_cli("apply", str(plan_path), env=ENV)
    assert run.exit_code == 0, run.stderr
    assert "Apply complete: 2 added, 0 changed, 0 deleted." in run.stdout
    assert sorted(joc.state.certificates) == ["agent-a", "agent-b"]
    assert_logged_out(joc)
    assert tokens
    for secret in [PASSWORD, *tokens]:
        assert secret not in text


def test_a_stale_plan_is_refused(certs_repo: GitRepo, joc: JocEmulator, tmp_path: Path) -> None:
    assert cli(certs_repo, "apply", "--auto-approve").exit_code == 0
    write_manifest(certs_repo, "agent-a", 4)
    plan_path = tmp_path / "plan.json"
    assert cli(certs_repo, "plan", "--out", str(plan_path)).exit_code == 0
    joc.state.assign("agent-a", "agent-9")  # somebody else changes JOC
    joc.clear_calls()

    run = run_cli("apply", str(plan_path), env=ENV)

    assert run.exit_code == 1
    assert "the plan is stale" in run.stderr
    assert "(agent-a)" in run.stderr
    assert joc.calls_to(STORE) == []
    assert joc.state.certificates["agent-a"]["certificate"] == cert(1)
    assert_logged_out(joc)


def test_a_folder_moved_in_joc_makes_a_plan_stale(
    certs_repo: GitRepo, joc: JocEmulator, tmp_path: Path
) -> None:
    assert cli(certs_repo, "apply", "--auto-approve").exit_code == 0
    write_manifest(certs_repo, "agent-a", 4)
    plan_path = tmp_path / "plan.json"
    assert cli(certs_repo, "plan", "--out", str(plan_path)).exit_code == 0
    with joc.state.lock:
        joc.state.job_resources["agent-b"]["folder"] = "/Elsewhere"
    run = run_cli("apply", str(plan_path), env=ENV)
    assert run.exit_code == 1
    assert "the plan is stale" in run.stderr
    assert "(agent-b)" in run.stderr


# -- failures in the middle of an apply ---------------------------------------------------------


def three_manifests(repo: GitRepo) -> None:
    write_manifest(repo, "agent-c", 3)
    repo.commit("three")


def test_session_expiry_in_the_middle_of_an_apply(
    certs_repo: GitRepo, joc: JocEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_manifests(certs_repo)
    plan_path = tmp_path / "plan.json"
    assert cli(certs_repo, "plan", "--out", str(plan_path)).exit_code == 0
    plan = read_plan(plan_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    keystore = open_keystore("prod", "joc", plan.connection, BackendOptions(deploy_timeout=0))
    joc.clear_calls()
    expired: list[int] = []

    def on_step(step: Any, index: int, total: int) -> None:
        if index in (1, 4):  # JOC ends the session after the first store and the first assignment
            expired.append(joc.expire_sessions())

    try:
        report = apply_plan(plan, keystore, AuditLog(comment="rotation"), on_step)
    finally:
        keystore.close()

    assert expired == [1, 1]
    assert len(report.done) == 5
    assert [c.status for c in joc.calls_to(STORE)] == [200, 440, 200, 200]
    adds = [c.status for c in joc.calls_to("encipherment/assignment/add")]
    assert adds == [200, 440, 200]
    assert [c.endpoint for c in joc.calls].count("authentication/login") == 3
    # Nothing duplicated or lost: each alias stored once, each assignment made once.
    assert [e["certAlias"] for e in joc.state.audit_log] == ["agent-a", "agent-b", "agent-c"]
    assert joc.state.assignments == {"agent-b": {"agent-1", "agent-2"}}
    assert_logged_out(joc)
    assert cli(certs_repo, "plan", "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize("fault", ["500", "dropped"])
def test_a_failure_at_the_nth_store_stops_the_apply_and_replan_shows_the_rest(
    certs_repo: GitRepo, joc: JocEmulator, fault: str
) -> None:
    three_manifests(certs_repo)
    if fault == "500":
        joc.add_fault(STORE, status=500, nth=2)
    else:  # the connection drops on the second store and on each of its two repetitions
        for nth in (2, 3, 4):
            joc.add_fault(STORE, drop=True, nth=nth)

    run = cli(certs_repo, "apply", "--auto-approve")

    assert run.exit_code == 1
    assert len(errors_of(run)) == 1
    reason = "HTTP 500" if fault == "500" else "broke when asked to store alias 'agent-b'"
    assert "apply stopped: create agent-b failed:" in run.stderr
    assert reason in run.stderr
    assert "Applied (1): created agent-a" in run.stderr
    assert "Not applied (4): created agent-b; created agent-c;" in run.stderr
    assert "Traceback" not in run.output
    assert sorted(joc.state.certificates) == ["agent-a"]
    assert_logged_out(joc)

    run = cli(certs_repo, "plan", "--detailed-exitcode")
    assert run.exit_code == 2
    assert "  + agent-a\n" not in run.stdout
    assert "  + agent-b\n" in run.stdout
    assert "  + agent-c\n" in run.stdout
    assert run.stdout.rstrip().endswith("Plan: 2 to add, 0 to change, 0 to delete.")
    assert cli(certs_repo, "apply", "--auto-approve").exit_code == 0
    assert cli(certs_repo, "plan", "--detailed-exitcode").exit_code == 0


def test_one_dropped_answer_is_repeated_and_the_apply_completes(
    certs_repo: GitRepo, joc: JocEmulator
) -> None:
    joc.add_fault(STORE, drop=True, nth=2, after=True)  # stored, but the answer was lost

    run = cli(certs_repo, "apply", "--auto-approve")

    assert run.exit_code == 0, run.stderr
    assert [c.status for c in joc.calls_to(STORE)] == [200, None, 200]
    assert sorted(joc.state.certificates) == ["agent-a", "agent-b"]
    assert cli(certs_repo, "plan", "--detailed-exitcode").exit_code == 0


# -- refusals -----------------------------------------------------------------------------------


def test_bad_credentials_are_one_clear_error(certs_repo: GitRepo, joc: JocEmulator) -> None:
    run = cli(certs_repo, "plan", env={"JS7_USER": "ci", "JS7_PASSWORD": "wrong-" + PASSWORD})
    assert run.exit_code == 1
    assert errors_of(run) == [
        f"Error: JOC at {joc.base_url} refused the login of account 'ci' (HTTP 401): wrong "
        "account or password, or the account may not log in."
    ]
    assert "Check JS7_USER and JS7_PASSWORD" in run.stderr
    assert PASSWORD not in run.output
    assert run.stdout == ""


def test_missing_credentials_name_the_variables(certs_repo: GitRepo, joc: JocEmulator) -> None:
    run = cli(certs_repo, "plan", env={})
    assert run.exit_code == 1
    assert "Error: the JOC account is not configured: set JS7_USER and JS7_PASSWORD" in run.stderr
    assert joc.calls == []


def test_a_password_file_works(certs_repo: GitRepo, joc: JocEmulator, tmp_path: Path) -> None:
    password_file = tmp_path / "joc-password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    run = cli(certs_repo, "plan", env={"JS7_USER": "ci", "JS7_PASSWORD_FILE": str(password_file)})
    assert run.exit_code == 0, run.stderr


def test_a_joc_older_than_2_7_1_is_refused(certs_repo: GitRepo, joc: JocEmulator) -> None:
    joc.config.version = "2.7.0"
    run = cli(certs_repo, "plan")
    assert run.exit_code == 1
    assert "is version 2.7.0, but the encryption-certificate API needs JOC 2.7.1" in run.stderr


def test_forced_comments(certs_repo: GitRepo, joc: JocEmulator) -> None:
    joc.config.force_comments = True

    run = cli(certs_repo, "apply", "--auto-approve", "--comment", "")

    assert run.exit_code == 1
    assert "JOC requires an audit-log comment for every change" in run.stderr
    assert "nothing was changed" in run.stderr
    assert joc.calls_to(STORE) == []
    assert joc.state.certificates == {}
    assert_logged_out(joc)

    run = cli(certs_repo, "apply", "--auto-approve")  # the default comment counts as given
    assert run.exit_code == 0, run.stderr
    assert all(e["comment"] for e in joc.state.audit_log)

    write_manifest(certs_repo, "agent-a", 4)
    run = cli(certs_repo, "apply", "--auto-approve", "--comment", "rotate agent-a")
    assert run.exit_code == 0, run.stderr
    assert joc.state.audit_log[-1]["comment"] == "rotate agent-a"


def test_a_viewer_may_plan_but_not_apply(
    certs_repo: GitRepo, joc: JocEmulator, tokens: list[str]
) -> None:
    joc.config.accounts["viewer"] = Account("view-pw", VIEW_PERMISSIONS)
    env = {"JS7_USER": "viewer", "JS7_PASSWORD": "view-pw"}
    assert cli(certs_repo, "plan", env=env).exit_code == 0

    run = cli(certs_repo, "apply", "--auto-approve", env=env)

    assert run.exit_code == 1
    assert (
        "JOC refused to store alias 'agent-a': the account 'viewer' lacks the permission "
        "sos:products:joc:administration:certificates:manage (HTTP 403)"
    ) in run.stderr
    for token in tokens:
        assert token not in run.output


def test_approval_required(certs_repo: GitRepo, joc: JocEmulator) -> None:
    joc.config.approval_required = {STORE}
    run = cli(certs_repo, "apply", "--auto-approve")
    assert run.exit_code == 1
    assert "needs the approval of a second person" in run.stderr
    assert [c.status for c in joc.calls_to(STORE)] == [433]


# -- logout on success, error and interruption ------------------------------------------------


def test_logout_after_an_error(certs_repo: GitRepo, joc: JocEmulator) -> None:
    joc.add_fault("encipherment/certificate", status=500)
    run = cli(certs_repo, "plan")
    assert run.exit_code == 1
    assert "JOC failed to list the certificates: HTTP 500" in run.stderr
    assert_logged_out(joc)


def _interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


def test_logout_after_an_interrupted_plan(
    certs_repo: GitRepo, joc: JocEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Narrow seam: ^C while the plan is computed, after the live keystore was read.
    monkeypatch.setattr("js7certctl.planning.diff", _interrupt)
    run = cli(certs_repo, "plan")
    assert run.exit_code == 130
    assert "encipherment/certificate" in [c.endpoint for c in joc.calls]
    assert_logged_out(joc)


def test_logout_after_an_interrupted_list(
    certs_repo: GitRepo, joc: JocEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = JocKeystore.list_entries

    def list_then_interrupt(self: JocKeystore) -> Any:
        real(self)
        raise KeyboardInterrupt  # ^C right after JOC answered

    monkeypatch.setattr(JocKeystore, "list_entries", list_then_interrupt)
    run = cli(certs_repo, "list")
    assert run.exit_code == 130
    assert_logged_out(joc)


def test_logout_after_an_interrupted_apply(
    certs_repo: GitRepo, joc: JocEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = JocKeystore.store
    stores: list[str] = []

    def store_then_interrupt(self: JocKeystore, alias: str, *args: Any) -> None:
        if stores:
            raise KeyboardInterrupt  # ^C before the second store
        stores.append(alias)
        real(self, alias, *args)

    monkeypatch.setattr(JocKeystore, "store", store_then_interrupt)
    run = cli(certs_repo, "apply", "--auto-approve")
    assert run.exit_code == 130
    assert sorted(joc.state.certificates) == ["agent-a"]
    assert "inventory/deployable" not in [c.endpoint for c in joc.calls[-3:]]  # no waiting
    assert_logged_out(joc)


def test_logout_when_the_confirmation_prompt_is_abandoned(
    certs_repo: GitRepo, joc: JocEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Narrow seam: CliRunner's stdin is not a terminal; pretend it is to reach the prompt, which
    # then meets the end of input (as with ^D or ^C).
    monkeypatch.setattr("js7certctl.cli._stdin_is_terminal", lambda: True)
    run = cli(certs_repo, "apply")
    assert run.exit_code == 130
    assert joc.state.certificates == {}
    assert_logged_out(joc)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_repo(repo: GitRepo, pki: Pki) -> Iterator[tuple[GitRepo, JocEmulator]]:
    with JocEmulator(tls_cert=pki.server_cert, tls_key=pki.server_key) as joc:
        joc.config.deploy_delay = 0.01
        joc.config.accounts["ci"] = Account(PASSWORD, ALL_PERMISSIONS)
        shutil.copy(pki.ca, repo.path / "joc-ca.pem")
        write_config(repo, f'{{backend: joc, url: "{joc.base_url}", caBundle: joc-ca.pem}}')
        write_manifest(repo, "agent-a", 1)
        repo.commit("tls")
        yield repo, joc


def test_tls_with_the_ca_bundle_of_the_target(tls_repo: tuple[GitRepo, JocEmulator]) -> None:
    repo, joc = tls_repo
    run = cli(repo, "apply", "--auto-approve")
    assert run.exit_code == 0, run.stderr
    assert "Warning" not in run.stderr
    assert sorted(joc.state.certificates) == ["agent-a"]


def test_tls_without_the_ca_bundle_fails_and_insecure_warns(
    tls_repo: tuple[GitRepo, JocEmulator],
) -> None:
    repo, joc = tls_repo
    write_config(repo, f'{{backend: joc, url: "{joc.base_url}"}}')

    run = cli(repo, "plan")
    assert run.exit_code == 1
    assert f"Error: cannot verify the TLS certificate of JOC at {joc.base_url}" in run.stderr
    assert joc.calls == []

    run = cli(repo, "plan", "--insecure")
    assert run.exit_code == 0, run.stderr
    assert "Warning: TLS certificate verification is turned off (--insecure)" in run.stderr


# -- secrets ------------------------------------------------------------------------------------


def test_no_password_or_token_in_any_output_or_plan_file(
    certs_repo: GitRepo, joc: JocEmulator, tokens: list[str], tmp_path: Path
) -> None:
    plan_path = tmp_path / "plan.json"
    runs = [
        cli(certs_repo, "plan", "--out", str(plan_path), "--debug"),
        cli(certs_repo, "apply", str(plan_path), "--debug"),
        cli(certs_repo, "list", "--format", "json"),
    ]
    joc.add_fault("encipherment/certificate", drop=True, every=True)
    runs.append(cli(certs_repo, "plan", "--debug"))
    joc.clear_faults()
    joc.config.accounts["ci"] = Account(PASSWORD, VIEW_PERMISSIONS)
    write_manifest(certs_repo, "agent-a", 4)
    # A 403, whose body holds the token:
    runs.append(cli(certs_repo, "apply", "--auto-approve", "--debug"))

    assert [r.exit_code for r in runs] == [0, 0, 0, 1, 1]
    secrets = [PASSWORD, *tokens]
    assert len(secrets) == 6
    texts = [r.output for r in runs] + [plan_path.read_text()]
    for text in texts:
        for secret in secrets:
            assert secret not in text
