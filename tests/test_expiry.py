"""`js7certctl expiry`: every format and exit code, manifests and the live keystore."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from js7certctl.keystore.local import LocalKeystore
from js7certctl.model import AuditLog
from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli


def _repo(repo: GitRepo) -> None:
    now = datetime.now(UTC)
    key = certgen.ec_key("P-256")
    soon = certgen.make_cert(
        key,
        cn="soon",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=10, hours=1),
    )
    later = certgen.make_cert(
        key,
        cn="later",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=200, hours=1),
    )
    repo.write("soon.yaml", manifest("soon", certificate=soon))
    repo.write("later.yaml", manifest("later", certificate=later))
    store = LocalKeystore(repo.path / ".js7certctl" / "keystore.db")
    old = certgen.make_cert(
        key,
        cn="old",
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=2, hours=1),
    )
    store.store("old", old, None, "/Encryption", AuditLog())
    store.store(
        "garbage",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        None,
        "/Encryption",
        AuditLog(),
    )
    store.close()


def test_text_and_exit_codes(repo: GitRepo) -> None:
    _repo(repo)
    result = run_cli("expiry", "--repo", str(repo.path))
    assert result.exit_code == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert [row.split()[-3] for row in rows] == ["old", "soon", "later", "garbage"]
    assert "expired 3 days ago" in rows[0]
    assert "10 days" in rows[1]
    within = run_cli("expiry", "--repo", str(repo.path), "--within", "30")
    assert within.exit_code == 2
    assert within.stdout.rstrip().endswith("2 certificate(s) expire within 30 days.")
    assert run_cli("expiry", "--repo", str(repo.path), "--within", "30", "--no-live").exit_code == 2
    assert run_cli("expiry", "--repo", str(repo.path), "--within", "5", "--no-live").exit_code == 0
    assert run_cli("expiry", "--repo", str(repo.path), "--within", "-1").exit_code == 64


def test_json(repo: GitRepo) -> None:
    _repo(repo)
    result = run_cli("expiry", "--repo", str(repo.path), "--within", "30", "--format", "json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["expiring"] == ["old", "soon"]
    by_alias = {c["alias"]: c for c in data["certificates"]}
    assert by_alias["soon"]["daysLeft"] == 10
    assert by_alias["soon"]["source"] == "manifest"
    assert by_alias["old"]["source"] == "live"
    assert by_alias["garbage"]["daysLeft"] is None


def test_prometheus_to_a_file(repo: GitRepo, tmp_path: Path) -> None:
    _repo(repo)
    out = tmp_path / "js7certctl.prom"
    result = run_cli(
        "expiry", "--repo", str(repo.path), "--format", "prometheus", "--out", str(out)
    )
    assert result.exit_code == 0
    assert result.stdout == ""
    text = out.read_text()
    assert "# TYPE js7certctl_certificate_expiry_seconds gauge" in text
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("js7certctl_certificate_expiry_seconds{")
    }
    soon = metrics[
        'js7certctl_certificate_expiry_seconds{alias="soon",target="local",source="manifest"}'
    ]
    assert 10 * 86400 < soon < 11 * 86400
    old = metrics['js7certctl_certificate_expiry_seconds{alias="old",target="local",source="live"}']
    assert old < 0
    assert not any("garbage" in key for key in metrics)
    assert "js7certctl_certificate_not_after_timestamp_seconds{" in text
