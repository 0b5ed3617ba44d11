"""The plan's blast radius: the JS7 objects that use an alias's Job Resource, the values encrypted
for it, and the guard against deleting an alias that is still referenced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from js7certctl.diff import referenced_deletes
from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import Action, Change, LiveEntry
from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli
from tests.lifecycle import NEW_KEY_PATH, OLD_KEY_PATH, PAYMENTS, REPORTING, Lifecycle, build

PAYMENTS_USERS = [
    "workflow pay-invoices (inventory/Payments/pay-invoices.workflow.json:15)",
    "job notify of workflow pay-invoices (inventory/Payments/pay-invoices.workflow.json:50)",
    "job template payments-job (inventory/Templates/payments-job.jobtemplate.json:8)",
]
REPORTING_USER = (
    "job report of workflow daily-report (inventory/Reporting/daily-report.workflow.json:18)"
)


@pytest.fixture
def lifecycle(repo: GitRepo, tmp_path: Path) -> Lifecycle:
    made = build(repo, tmp_path)
    applied = made.cli("apply", "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    return made


def _change_key_path(lifecycle: Lifecycle) -> None:
    path = lifecycle.path / "certs" / f"{PAYMENTS}.yaml"
    path.write_text(path.read_text().replace(OLD_KEY_PATH, NEW_KEY_PATH))


def _live_aliases(lifecycle: Lifecycle) -> list[str]:
    store = LocalKeystore(lifecycle.path / ".js7certctl" / "keystore.db")
    try:
        return [e.alias for e in store.list_entries()]
    finally:
        store.close()


def test_blast_radius_in_text_json_markdown_and_the_plan_file(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    _change_key_path(lifecycle)
    saved = tmp_path / "plan.json"
    text = lifecycle.cli("plan", "--out", str(saved))
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    start = lines.index(f"  ~ {PAYMENTS}")
    assert lines[start + 1 : start + 6] == [
        f"      privateKeyPath:    {OLD_KEY_PATH} -> {NEW_KEY_PATH}",
        f"      referencedBy:      {PAYMENTS_USERS[0]}",
        f"                         {PAYMENTS_USERS[1]}",
        f"                         {PAYMENTS_USERS[2]}",
        "      encryptedValues:   4 in the repository (known by reference)",
    ]
    assert "Blast radius: 5 JS7 inventory objects and 14 enc: values in the repository." in lines

    data = json.loads(lifecycle.cli("plan", "--format", "json").stdout)
    radius = data["blastRadius"]
    assert (radius["inventoryObjects"], radius["encryptedValues"]) == (5, 14)
    assert list(radius["aliases"]) == [PAYMENTS]
    payments = radius["aliases"][PAYMENTS]
    assert payments["jobResource"] == PAYMENTS
    assert payments["encryptedValues"] == 4
    assert payments["references"] == [
        {
            "kind": "workflow",
            "name": "pay-invoices",
            "job": None,
            "file": "inventory/Payments/pay-invoices.workflow.json",
            "line": 15,
        },
        {
            "kind": "workflow",
            "name": "pay-invoices",
            "job": "notify",
            "file": "inventory/Payments/pay-invoices.workflow.json",
            "line": 50,
        },
        {
            "kind": "jobtemplate",
            "name": "payments-job",
            "job": None,
            "file": "inventory/Templates/payments-job.jobtemplate.json",
            "line": 8,
        },
    ]
    assert data["guards"]["allowReferencedDelete"] is False

    markdown = lifecycle.cli("plan", "--format", "markdown").stdout
    assert (
        f"| `{PAYMENTS}` | `{PAYMENTS}` | workflow `pay-invoices`, workflow `pay-invoices` "
        "(job `notify`), job template `payments-job` | 4 |" in markdown
    )
    assert f"referencedBy:      {PAYMENTS_USERS[0]}" in markdown  # in the details

    # The saved plan holds it: `show` renders the same in every format, with no Git needed.
    for fmt in ("text", "json", "markdown"):
        shown = run_cli("show", str(saved), "--format", fmt).stdout
        assert PAYMENTS_USERS[1] in shown or '"job": "notify"' in shown, fmt
    assert run_cli("show", str(saved)).stdout == text.stdout


def test_deleting_a_referenced_alias_needs_the_flag(lifecycle: Lifecycle) -> None:
    (lifecycle.path / "certs" / f"{REPORTING}.yaml").unlink()
    refused = lifecycle.cli("plan")
    assert refused.exit_code == 1
    assert (
        f"alias '{REPORTING}' is deleted, but 1 JS7 object(s) in the repository still use its "
        f"Job Resource: {REPORTING_USER}. Change them first, or pass --allow-referenced-delete"
        in refused.stderr
    )
    comment = lifecycle.cli("plan", "--format", "markdown")
    assert comment.exit_code == 1
    assert "The plan could not be made" in comment.stdout
    assert REPORTING_USER in comment.stdout

    allowed = lifecycle.cli("plan", "--allow-referenced-delete", "--detailed-exitcode")
    assert allowed.exit_code == 2, allowed.stderr
    assert f"  - {REPORTING}" in allowed.stdout
    assert f"referencedBy:      {REPORTING_USER}" in allowed.stdout
    assert "encryptedValues:   1 in the repository" in allowed.stdout
    markdown = lifecycle.cli("plan", "--allow-referenced-delete", "--format", "markdown")
    assert f"`{REPORTING}` (still used by 1 JS7 object)" in markdown.stdout
    data = json.loads(lifecycle.cli("plan", "--allow-referenced-delete", "--format", "json").stdout)
    assert data["guards"]["allowReferencedDelete"] is True

    assert lifecycle.cli("apply", "--auto-approve").exit_code == 1
    assert REPORTING in _live_aliases(lifecycle)
    applied = lifecycle.cli("apply", "--auto-approve", "--allow-referenced-delete")
    assert applied.exit_code == 0, applied.stderr
    assert _live_aliases(lifecycle) == [PAYMENTS]


def test_an_unreferenced_delete_needs_no_flag(lifecycle: Lifecycle) -> None:
    workflow = lifecycle.path / "inventory" / "Reporting" / "daily-report.workflow.json"
    workflow.unlink()
    (lifecycle.path / "certs" / f"{REPORTING}.yaml").unlink()
    plan = lifecycle.cli("plan")
    assert plan.exit_code == 0, plan.stderr
    assert "referencedBy:      no JS7 object in the repository" in plan.stdout
    assert "encryptedValues:   0 in the repository" in plan.stdout


def test_a_rename_lists_the_objects_that_still_name_the_old_job_resource(
    lifecycle: Lifecycle,
) -> None:
    path = lifecycle.path / "certs" / f"{REPORTING}.yaml"
    text = path.read_text().replace(
        f"metadata:\n  alias: {REPORTING}\n",
        f"metadata:\n  alias: reporting-2\n  previousAliases: [{REPORTING}]\n",
    )
    path.write_text(text)
    plan = lifecycle.cli("plan")
    assert plan.exit_code == 0, plan.stderr
    assert f"  > reporting-2 (renamed from {REPORTING})" in plan.stdout
    assert f"referencedBy:      {REPORTING_USER}" in plan.stdout
    assert (
        f"note:              these still name the Job Resource {REPORTING}; change them to "
        "reporting-2" in plan.stdout
    )


def test_the_scan_reads_the_planned_revision(lifecycle: Lifecycle) -> None:
    _change_key_path(lifecycle)
    lifecycle.repo.commit("new key path")
    template = lifecycle.path / "inventory" / "Templates" / "payments-job.jobtemplate.json"
    template.unlink()  # only in the working tree
    at_head = lifecycle.cli("plan", "--ref", "HEAD")
    assert PAYMENTS_USERS[2] in at_head.stdout
    worktree = lifecycle.cli("plan")
    assert PAYMENTS_USERS[1] in worktree.stdout
    assert PAYMENTS_USERS[2] not in worktree.stdout


def test_no_scan_when_nothing_is_updated_or_deleted(repo: GitRepo, tmp_path: Path) -> None:
    made = build(repo, tmp_path)
    data = json.loads(made.cli("plan", "--format", "json").stdout)
    assert [c["action"] for c in data["changes"]] == ["create", "create"]
    assert "blastRadius" not in data


def test_nothing_is_shown_for_a_repository_without_inventory_or_values(repo: GitRepo) -> None:
    cert = certgen.make_cert(cn="a")
    repo.write("a.yaml", manifest("agent-a", certificate=cert))
    repo.commit()
    assert run_cli("apply", "--auto-approve", "--repo", str(repo.path)).exit_code == 0
    repo.write("a.yaml", manifest("agent-a", certificate=cert, private_key_path="/other/key"))
    plan = run_cli("plan", "--repo", str(repo.path))
    assert plan.exit_code == 0, plan.stderr
    assert "  ~ agent-a" in plan.stdout
    assert "referencedBy" not in plan.stdout
    assert "Blast radius" not in plan.stdout
    data = json.loads(run_cli("plan", "--repo", str(repo.path), "--format", "json").stdout)
    assert data["blastRadius"] == {
        "inventoryObjects": 0,
        "encryptedValues": 0,
        "aliases": {"agent-a": {"jobResource": "agent-a", "encryptedValues": 0, "references": []}},
    }


def test_referenced_deletes_is_pure_and_names_at_most_ten_objects() -> None:
    entry = LiveEntry("a", "", None, "/Encryption", ())
    changes = [
        Change("a", Action.DELETE, entry, None),
        Change("b", Action.UPDATE, entry, None),
        Change("c", Action.DELETE, entry, None),
    ]
    users = [f"workflow w{i} (w{i}.workflow.json:1)" for i in range(12)]
    errors = referenced_deletes(changes, {"a": users, "b": users[:1], "c": []})
    assert len(errors) == 1
    assert errors[0].startswith("alias 'a' is deleted, but 12 JS7 object(s)")
    assert "w9.workflow.json:1); and 2 more. Change them first" in errors[0]
    assert "w10" not in errors[0]
