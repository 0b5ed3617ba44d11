"""Loading manifests in two processes gives exactly what one process gives.

``manifest.PARALLEL_MIN_FILES`` is lowered so that a small repository takes the forked path; the
results (entries, every problem in order, files) are compared with a single-process load of the
same repository, at a revision and in the working tree, also when the child fails.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from js7certctl import manifest
from js7certctl.manifest import LoadResult
from js7certctl.workspace import open_workspace
from tests import certgen
from tests.helpers import GitRepo
from tests.helpers import manifest as manifest_text

NOW = datetime.now(UTC)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parallel load forks on Linux only"
)


def _repo(path: Path) -> GitRepo:
    """Manifests whose problems span both halves: duplicates, case clashes, bad YAML, an
    expired certificate, a shared certificate file, an inline certificate, two documents."""
    repo = GitRepo(path)
    repo.write("js7certctl.yaml", "manifests: [certs/]\n")
    shared = certgen.make_cert(certgen.ec_key(), cn="shared")
    repo.write("certs/shared.crt", shared)
    for index in range(12):
        alias = f"agent-{index:02d}"
        repo.write(
            f"certs/{alias}.crt", certgen.make_cert(certgen.ec_key(variant=index % 3), cn=alias)
        )
        repo.write(f"certs/{alias}.yaml", manifest_text(alias, certificate_file=f"{alias}.crt"))
    # A duplicate of agent-00 at the far end (in the child's half), a case clash, a shared file.
    repo.write("certs/zz-dup.yaml", manifest_text("agent-00", certificate_file="shared.crt"))
    repo.write("certs/zz-case.yaml", manifest_text("AGENT-01", certificate_file="shared.crt"))
    repo.write("certs/broken.yaml", "apiVersion: [unclosed\n")
    repo.write("certs/empty.yaml", "# nothing here\n")
    expired = certgen.make_cert(
        certgen.rsa_key(),
        cn="old",
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(days=1),
    )
    repo.write(
        "certs/two.yaml",
        manifest_text("inline-expired", certificate=expired)
        + "---\n"
        + manifest_text("inline-ok", certificate=shared, private_key_path=None)
        + "---\n"
        + "apiVersion: js7certctl/v1\nkind: Nope\n",
    )
    repo.commit("manifests")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    return _repo(tmp_path_factory.mktemp("parallel") / "repo")


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The children forked (the test is skipped where the load would not fork)."""
    if threading.active_count() != 1:
        pytest.skip("another thread runs in this test process, so the load does not fork")
    children: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting_fork)
    return children


def _load(repo: GitRepo, ref: str | None, monkeypatch: pytest.MonkeyPatch, parallel: bool) -> Any:
    monkeypatch.chdir(repo.path)
    monkeypatch.setattr(manifest, "PARALLEL_MIN_FILES", 2 if parallel else 10**9)
    monkeypatch.setattr(manifest, "_usable_cpus", lambda: 2)
    workspace = open_workspace(ref=ref)
    return workspace.load(workspace.config.target(None), now=NOW)


def _same(one: LoadResult, other: LoadResult) -> None:
    assert other.files == one.files
    assert other.certs == one.certs
    assert other.problems == one.problems


@pytest.mark.parametrize("ref", ["HEAD", None])
def test_two_processes_load_what_one_loads(
    repo: GitRepo, ref: str | None, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    serial = _load(repo, ref, monkeypatch, parallel=False)
    parallel = _load(repo, ref, monkeypatch, parallel=True)
    assert len(forks) == 1
    _same(serial, parallel)
    rules = {p.rule for p in parallel.problems}
    assert {"duplicate-alias", "alias-case", "yaml-syntax", "empty-file", "cert-expired"} <= rules
    assert "inline-ok" in {c.alias for c in parallel.certs}


def test_a_failing_child_half_is_loaded_by_the_parent(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    serial = _load(repo, "HEAD", monkeypatch, parallel=False)

    class BrokenPickler(pickle.Pickler):
        def dump(self, obj: object) -> None:
            raise OSError("the child cannot send its batch")

    monkeypatch.setattr(manifest, "_BatchPickler", BrokenPickler)
    _same(serial, _load(repo, "HEAD", monkeypatch, parallel=True))
    assert len(forks) == 1


def test_a_damaged_batch_is_loaded_by_the_parent(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    serial = _load(repo, "HEAD", monkeypatch, parallel=False)

    def damaged(data: bytes) -> object:
        return {"not": "a batch"}

    monkeypatch.setattr(pickle, "loads", damaged)
    _same(serial, _load(repo, "HEAD", monkeypatch, parallel=True))
    assert len(forks) == 1


def test_warnings_seen_in_the_child_are_issued_in_the_parent(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    real = manifest._load_batch
    parent = os.getpid()

    def warning_batch(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            warnings.warn("seen in the child", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(manifest, "_load_batch", warning_batch)
    with pytest.warns(UserWarning, match="seen in the child"):
        _load(repo, "HEAD", monkeypatch, parallel=True)
    assert len(forks) == 1


def test_few_files_or_other_threads_load_in_one_process(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    _load(repo, "HEAD", monkeypatch, parallel=False)  # below PARALLEL_MIN_FILES
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        result = _load(repo, "HEAD", monkeypatch, parallel=True)  # another thread is running
    finally:
        stop.set()
        other.join()
    assert result.certs
