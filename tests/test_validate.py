"""`validate` end to end on real Git repositories: manifests, config, Git source, health."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import certgen
from tests.helpers import GitRepo, manifest, run_cli, run_process

KEY_PATH = "/var/sos-berlin.com/js7/agent/config/private/agent.key"


@pytest.fixture(scope="module")
def rsa_cert() -> str:
    return certgen.make_cert(certgen.rsa_key(2048), cn="agent-rsa", days=400)


@pytest.fixture(scope="module")
def ec_cert() -> str:
    return certgen.make_cert(certgen.ec_key("P-256"), cn="agent-ec", days=400)


def _problems(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if ": error: " in line or ": warning: " in line]


def test_valid_repository_exits_0_with_one_line_per_alias(
    repo: GitRepo, rsa_cert: str, ec_cert: str
) -> None:
    repo.write("certs/a.yaml", manifest("agent-a", certificate_file="a.crt", agents=["agent-001"]))
    repo.write("certs/a.crt", rsa_cert)
    repo.write("certs/b.yaml", manifest("agent-b", certificate=ec_cert))
    repo.commit()
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 0, result.output
    assert "Validated 2 manifest files (2 certificates)" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["ok", "agent-a"] and "RSA 2048" in line for line in lines)
    assert any(line.split()[:2] == ["ok", "agent-b"] and "EC P-256" in line for line in lines)
    assert "Valid: 0 warnings." in result.stdout


def test_ref_reads_the_commit_not_the_dirty_working_tree(repo: GitRepo, rsa_cert: str) -> None:
    repo.write("a.yaml", manifest("agent-a", certificate=rsa_cert))
    first = repo.commit("good")
    # The working tree is now broken, and a later commit renames the alias.
    repo.write("a.yaml", "apiVersion: [broken\n")
    result = run_cli("validate", "--repo", str(repo.path), "--ref", first, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert data["source"]["revision"] == first
    assert data["source"]["dirty"] is False
    assert [c["alias"] for c in data["certificates"]] == ["agent-a"]
    # Without --ref the working tree is read and its breakage reported, flagged dirty.
    result = run_cli("validate", "--repo", str(repo.path), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["source"]["dirty"] is True
    assert data["problems"][0]["rule"] == "yaml-syntax"
    assert data["problems"][0]["path"] == "a.yaml"


def test_ref_reads_certificate_files_at_the_revision(repo: GitRepo, rsa_cert: str) -> None:
    repo.write("a.yaml", manifest("agent-a", certificate_file="a.crt"))
    repo.write("a.crt", rsa_cert)
    sha = repo.commit()
    repo.remove("a.crt")
    assert run_cli("validate", "--repo", str(repo.path), "--ref", sha).exit_code == 0
    missing = run_cli("validate", "--repo", str(repo.path))
    assert missing.exit_code == 1
    assert "a.yaml:6:20: error: certificateFile 'a.crt' does not exist" in missing.stdout


def test_branch_and_tag_refs(repo: GitRepo, rsa_cert: str) -> None:
    repo.write("a.yaml", manifest("agent-a", certificate=rsa_cert))
    repo.commit()
    repo.git("tag", "v1")
    repo.write("b.yaml", manifest("agent-b", certificate=rsa_cert))
    repo.commit()
    at_tag = json.loads(
        run_cli("validate", "--repo", str(repo.path), "--ref", "v1", "-f", "json").stdout
    )
    at_main = json.loads(
        run_cli("validate", "--repo", str(repo.path), "--ref", "main", "-f", "json").stdout
    )
    assert [c["alias"] for c in at_tag["certificates"]] == ["agent-a"]
    assert [c["alias"] for c in at_main["certificates"]] == ["agent-a", "agent-b"]


def test_every_problem_is_reported_in_one_run_with_positions(repo: GitRepo, rsa_cert: str) -> None:
    repo.write(
        "bad.yaml",
        "apiVersion: js7certctl/v2\n"  # line 1
        "kind: EncryptionCertificate\n"
        "metadata:\n"
        "  alias: bad alias\n"  # line 4
        "  colour: blue\n"  # line 5
        "spec:\n"
        "  certificate: |\n"
        + "".join(f"    {line}\n" for line in rsa_cert.splitlines())
        + "  privateKeyPath: relative/key.pem\n"
        "  jobResourceFolder: Encryption\n"
        "  agents: [agent-1, agent-2, agent-1]\n",
    )
    repo.write(
        "dup.yaml",
        "apiVersion: js7certctl/v1\n"
        "kind: EncryptionCertificate\n"
        "kind: EncryptionCertificate\n"  # duplicate key, line 3
        "metadata: {alias: 42}\n"  # wrong type, line 4
        "spec: {}\n",
    )
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    problems = _problems(result.stdout)
    n = len(rsa_cert.splitlines())
    expected = [
        "bad.yaml:1:13: error: unknown apiVersion 'js7certctl/v2'; use js7certctl/v1 [api-version]",
        "bad.yaml:4:10: error: alias 'bad alias' must not contain whitespace [alias-name]",
        "bad.yaml:5:3: error: unknown field 'colour' in metadata; allowed: alias, labels, "
        "previousAliases [unknown-field]",
        f"bad.yaml:{8 + n}:19: warning: privateKeyPath 'relative/key.pem' is relative; Agents "
        "need an absolute path (or C:\\... on Windows) [private-key-path]",
        f"bad.yaml:{9 + n}:22: error: spec.jobResourceFolder must be an absolute folder such as "
        "/Encryption [folder-not-absolute]",
        f"bad.yaml:{10 + n}:30: error: Agent 'agent-1' is listed twice (first at line {10 + n}) "
        "[duplicate-agent]",
        "dup.yaml:3:1: error: duplicate key 'kind' in the manifest (first at line 2) "
        "[duplicate-key]",
        'dup.yaml:4:19: error: metadata.alias must be a string, not an integer (quote it: "42") '
        "[type]",
        "dup.yaml:5:1: error: spec is missing the field 'certificate' or 'certificateFile' "
        "[missing-field]",
        "dup.yaml:5:1: warning: spec has no privateKeyPath: the Agents cannot find their private "
        "key [private-key-path]",
    ]
    assert problems == expected
    assert "Invalid: 8 errors, 2 warnings." in result.stdout


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("a b", "must not contain whitespace"),
        ("a/b", "must not contain /"),
        ("a:b", "must not contain :"),
        ("-ab", "must not start or end with '.' or '-'"),
        ("ab.", "must not start or end with '.' or '-'"),
        ("a..b", "must not contain '..' or '--'"),
        ("a--b", "must not contain '..' or '--'"),
        ("class", "is a Java reserved word"),
        ('"a$b"', "must not contain $"),
    ],
)
def test_alias_naming_rules(repo: GitRepo, rsa_cert: str, alias: str, message: str) -> None:
    repo.write("a.yaml", manifest(alias, certificate=rsa_cert))
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    problems = _problems(result.stdout)
    assert len(problems) == 1
    assert problems[0].startswith("a.yaml:4:10: error: alias ")
    assert message in problems[0]


def test_duplicate_alias_names_both_places(repo: GitRepo, rsa_cert: str, ec_cert: str) -> None:
    repo.write("one.yaml", manifest("agent-x", certificate=rsa_cert))
    repo.write("sub/two.yaml", manifest("agent-x", certificate=ec_cert))
    repo.write("sub/three.yaml", manifest("Agent-X", certificate=ec_cert))
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    problems = _problems(result.stdout)
    assert (
        "one.yaml:4:10: error: alias 'agent-x' is also defined at sub/two.yaml:4:10 "
        "[duplicate-alias]" in problems
    )
    assert (
        "sub/two.yaml:4:10: error: alias 'agent-x' is also defined at one.yaml:4:10 "
        "[duplicate-alias]" in problems
    )
    assert any("differs only in case" in p and ": warning: " in p for p in problems)


def test_multi_document_files(repo: GitRepo, rsa_cert: str, ec_cert: str) -> None:
    repo.write(
        "all.yaml",
        manifest("agent-a", certificate=rsa_cert)
        + "---\n"
        + manifest("agent-b", certificate=ec_cert, private_key_path="C:\\js7\\agent-b.key")
        + "---\n",
    )
    result = run_cli("validate", "--repo", str(repo.path), "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["alias"] for c in data["certificates"]] == ["agent-a", "agent-b"]
    assert data["certificates"][1]["line"] > data["certificates"][0]["line"]
    assert data["problems"] == []


def test_certificate_file_escapes(repo: GitRepo, rsa_cert: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside.crt"
    outside.write_text(rsa_cert)
    repo.write("in/ok.crt", rsa_cert)
    os.symlink(outside, repo.path / "in" / "link-out.crt")
    os.symlink("ok.crt", repo.path / "in" / "link-in.crt")
    os.symlink("loop-b.crt", repo.path / "in" / "loop-a.crt")
    os.symlink("loop-a.crt", repo.path / "in" / "loop-b.crt")
    repo.write("in/climb.yaml", manifest("climb", certificate_file="../../outside.crt"))
    repo.write("in/abs.yaml", manifest("absolute", certificate_file=str(outside)))
    repo.write("in/link.yaml", manifest("linkout", certificate_file="link-out.crt"))
    repo.write("in/loop.yaml", manifest("loop", certificate_file="loop-a.crt"))
    repo.write("in/inside.yaml", manifest("inside", certificate_file="link-in.crt"))
    repo.write("in/dir.yaml", manifest("folder", certificate_file="."))
    sha = repo.commit()
    for ref in (None, sha):
        args = ["validate", "--repo", str(repo.path), "-f", "json"]
        if ref:
            args += ["--ref", ref]
        data = json.loads(run_cli(*args).stdout)
        by_path = {p["path"]: p for p in data["problems"] if p["severity"] == "error"}
        assert "climbs out of the repository" in by_path["in/climb.yaml"]["message"]
        assert "absolute path" in by_path["in/abs.yaml"]["message"]
        assert "leads out of the repository" in by_path["in/link.yaml"]["message"]
        assert "symlink loop" in by_path["in/loop.yaml"]["message"]
        assert "is not a file" in by_path["in/dir.yaml"]["message"]
        assert "in/inside.yaml" not in by_path
        assert [c["alias"] for c in data["certificates"]] == ["inside"], ref
        assert all(p["line"] == 6 for p in by_path.values())


def test_private_key_in_a_manifest_is_an_error_and_never_echoed(repo: GitRepo) -> None:
    key = certgen.rsa_key(2048)
    key_pem = certgen.private_key_pem(key)
    cert = certgen.make_cert(key, cn="leaky")
    repo.write("a.yaml", manifest("leaky", certificate=key_pem + cert))
    repo.write("b.yaml", manifest("leaky-file", certificate_file="b.pem"))
    repo.write("b.pem", cert + key_pem)
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    problems = _problems(result.stdout)
    assert [p.split(": error: ")[0] for p in problems] == ["a.yaml:6:16", "b.yaml:6:20"]
    assert all("[private-key]" in p for p in problems)
    body_lines = [line for line in key_pem.splitlines() if "-----" not in line]
    for line in body_lines:
        assert line not in result.output


def test_pem_problems(repo: GitRepo, rsa_cert: str, ec_cert: str) -> None:
    repo.write("chain.yaml", manifest("chain", certificate=rsa_cert + ec_cert))
    repo.write("garbage.yaml", manifest("garbage", certificate="not a certificate"))
    broken = rsa_cert.replace(rsa_cert.splitlines()[3], "!!!!" * 16)
    repo.write("broken.yaml", manifest("broken", certificate=broken))
    result = run_cli("validate", "--repo", str(repo.path), "-f", "json")
    assert result.exit_code == 1
    rules = {p["path"]: p["rule"] for p in json.loads(result.stdout)["problems"]}
    assert rules == {
        "broken.yaml": "pem-invalid",
        "chain.yaml": "pem-bundle",
        "garbage.yaml": "pem-missing",
    }


def test_health_findings(repo: GitRepo) -> None:
    now = datetime.now(UTC)
    rsa = certgen.rsa_key(2048)
    repo.write(
        "expired.yaml",
        manifest(
            "expired",
            certificate=certgen.make_cert(
                rsa, not_before=now - timedelta(days=400), not_after=now - timedelta(days=3)
            ),
        ),
    )
    repo.write(
        "expiring.yaml",
        manifest(
            "expiring",
            certificate=certgen.make_cert(
                rsa, not_before=now - timedelta(days=1), not_after=now + timedelta(days=12, hours=2)
            ),
        ),
    )
    repo.write(
        "future.yaml",
        manifest(
            "future",
            certificate=certgen.make_cert(
                rsa, not_before=now + timedelta(days=2), not_after=now + timedelta(days=300)
            ),
        ),
    )
    repo.write("weak.yaml", manifest("weak", certificate=certgen.make_cert(certgen.rsa_key(1024))))
    repo.write("ed.yaml", manifest("ed", certificate=certgen.make_cert(certgen.ed25519_key())))
    repo.write(
        "pub.yaml", manifest("pub", certificate=certgen.public_key_pem(certgen.ec_key("P-256")))
    )
    repo.write("sha1.yaml", manifest("sha1", certificate=certgen.make_cert(rsa, hash="sha1")))
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    problems = _problems(result.stdout)

    def one(path: str) -> str:
        found = [p for p in problems if p.startswith(path + ":")]
        assert len(found) == 1, found
        assert found[0].startswith(f"{path}:6:16: ")
        return found[0]

    assert ": error: " in one("expired.yaml")
    assert "expired" in one("expired.yaml")
    assert ": warning: " in one("expiring.yaml")
    assert "expires in 12 days" in one("expiring.yaml")
    assert ": error: " in one("future.yaml")
    assert "not valid before" in one("future.yaml")
    assert ": error: " in one("weak.yaml")
    assert "RSA 1024" in one("weak.yaml")
    assert ": error: " in one("ed.yaml")
    assert "Ed25519" in one("ed.yaml")
    assert ": warning: " in one("pub.yaml")
    assert "public key without a certificate" in one("pub.yaml")
    assert ": warning: " in one("sha1.yaml")
    assert "SHA-1" in one("sha1.yaml")


def test_policy_from_the_config(repo: GitRepo) -> None:
    now = datetime.now(UTC)
    cert = certgen.make_cert(certgen.rsa_key(2048), not_after=now + timedelta(days=50, hours=1))
    repo.write("certs/a.yaml", manifest("team-a", certificate=cert))
    repo.write(
        "js7certctl.yaml",
        "manifests: [certs]\npolicy: {expiryWarningDays: 60, scope: ['other-*']}\n",
    )
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    problems = _problems(result.stdout)
    assert any("expires in 50 days" in p and ": warning: " in p for p in problems)
    assert any("[alias-out-of-scope]" in p and p.startswith("certs/a.yaml:4:10") for p in problems)


def test_config_errors_have_positions(repo: GitRepo, rsa_cert: str) -> None:
    repo.write("a.yaml", manifest("agent-a", certificate=rsa_cert))
    repo.write(
        "js7certctl.yaml",
        "manifests: [.]\n"
        "policy:\n"
        "  maxDeletes: many\n"
        "  prune: yes please\n"
        "targets:\n"
        "  prod: {backend: joc}\n"
        "  other: {backend: ftp}\n"
        "defaultTarget: nowhere\n"
        "extra: 1\n",
    )
    result = run_cli("validate", "--repo", str(repo.path))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("js7certctl.yaml:")]
    assert lines == [
        "js7certctl.yaml:3:15: error: policy.maxDeletes must be an integer, not a string [type]",
        "js7certctl.yaml:4:10: error: policy.prune must be true or false, not a string [type]",
        "js7certctl.yaml:6:3: error: targets.prod is missing the field 'url' [missing-field]",
        "js7certctl.yaml:7:20: error: targets.other.backend must be one of local, joc, not 'ftp' "
        "[unknown-backend]",
        "js7certctl.yaml:8:16: error: defaultTarget 'nowhere' is not defined under targets "
        "(known: local) [unknown-target]",
        "js7certctl.yaml:9:1: error: unknown field 'extra' in the config; allowed: manifests, "
        "defaults, policy, targets, defaultTarget [unknown-field]",
    ]
    assert "Traceback" not in result.output


def test_config_found_from_a_subfolder(repo: GitRepo, rsa_cert: str) -> None:
    repo.write("infra/certs/js7certctl.yaml", "manifests: [manifests/]\n")
    repo.write("infra/certs/manifests/a.yaml", manifest("agent-a", certificate=rsa_cert))
    repo.write("other/not-a-manifest.yaml", "foo: bar\n")
    repo.commit()
    deep = repo.path / "infra" / "certs" / "manifests"
    result = run_cli("validate", "--repo", str(deep), "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"]["base"] == "infra/certs"
    assert data["certificates"][0]["path"] == "infra/certs/manifests/a.yaml"
    sha = repo.git("rev-parse", "HEAD")
    at_ref = run_cli("validate", "--repo", str(deep), "--ref", sha, "-f", "json")
    assert json.loads(at_ref.stdout)["certificates"][0]["alias"] == "agent-a"


def test_outside_git_works_without_ref(tmp_path: Path, rsa_cert: str) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.yaml").write_text(manifest("agent-a", certificate=rsa_cert))
    result = run_cli("validate", "--repo", str(folder), "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == {
        "repository": None,
        "ref": None,
        "revision": None,
        "dirty": False,
        "base": "",
    }
    with_ref = run_cli("validate", "--repo", str(folder), "--ref", "main")
    assert with_ref.exit_code == 1
    assert "--ref needs a Git repository" in with_ref.stderr


def test_source_errors_are_one_clear_message(repo: GitRepo, rsa_cert: str) -> None:
    empty = run_cli("validate", "--repo", str(repo.path))
    assert empty.exit_code == 1
    assert empty.stderr.startswith("Error: no manifests found")
    repo.write("a.yaml", manifest("agent-a", certificate=rsa_cert))
    repo.commit()
    unknown = run_cli("validate", "--repo", str(repo.path), "--ref", "no-such-branch")
    assert unknown.exit_code == 1
    assert "unknown revision 'no-such-branch'" in unknown.stderr
    dash = run_cli("validate", "--repo", str(repo.path), "--ref", "--output=x")
    assert dash.exit_code == 64
    for result in (empty, unknown, dash):
        assert "Traceback" not in result.output


def test_empty_file_and_syntax_errors(repo: GitRepo) -> None:
    repo.write("empty.yaml", "")
    repo.write("tabs.yaml", "apiVersion: js7certctl/v1\nkind:\n\t- x\n")
    repo.write("latin1.yaml", "metadata:\n  alias: caf\xe9\n".encode("latin-1"))
    result = run_cli("validate", "--repo", str(repo.path), "-f", "json")
    assert result.exit_code == 1
    found = {
        (p["path"], p["line"], p["column"], p["rule"])
        for p in json.loads(result.stdout)["problems"]
    }
    assert ("empty.yaml", 1, 1, "empty-file") in found
    assert ("latin1.yaml", 2, 13, "yaml-encoding") in found
    assert any(path == "tabs.yaml" and rule == "yaml-syntax" for path, _, _, rule in found)


def test_usage_errors_exit_64(repo: GitRepo) -> None:
    assert run_cli("validate", "--no-such-option").exit_code == 64
    assert run_cli("validate", "--format", "yaml").exit_code == 64
    assert run_cli("validate", "--repo", str(repo.path), "--target", "nope").exit_code == 64
    assert run_cli("no-such-command").exit_code == 64


def test_as_a_process_no_traceback_and_python_dash_m(repo: GitRepo, rsa_cert: str) -> None:
    repo.write("a.yaml", "apiVersion: [\n")
    proc = run_process("validate", cwd=repo.path)
    assert proc.returncode == 1
    assert "a.yaml:2:1: error: invalid YAML" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_examples_validate() -> None:
    from tests.helpers import PROJECT_ROOT

    result = run_cli("validate", "--repo", str(PROJECT_ROOT / "examples" / "certs"), "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["alias"] for c in data["certificates"]] == [
        "agent-batch",
        "agent-payments",
        "agent-reporting",
    ]
    assert data["problems"] == []


def test_init_then_validate_passes_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    GitRepo(folder)
    first = run_cli("init", "--repo", str(folder))
    assert first.exit_code == 0, first.output
    assert (folder / ".gitignore").read_text() == ".js7certctl/\n"
    assert run_cli("validate", "--repo", str(folder)).exit_code == 0
    config_before = (folder / "js7certctl.yaml").read_text()
    (folder / "js7certctl.yaml").write_text(config_before + "# mine\n")
    second = run_cli("init", "--repo", str(folder))
    assert second.exit_code == 0
    assert (folder / "js7certctl.yaml").read_text().endswith("# mine\n")
    assert (folder / ".gitignore").read_text() == ".js7certctl/\n"
    assert "exists; left as it is" in second.stderr


def test_version() -> None:
    from js7certctl import __version__

    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"js7certctl {__version__}\n"
