"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import EXAMPLES, GIT_ENV, GitRepo

# CI runs the property and fuzz tests derandomized, so that a landing never depends on luck;
# local runs explore new examples each time.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI variables, colours or JOC credentials leak in from the machine running the tests."""
    for name in list(os.environ):
        if name in ("CI", "NO_COLOR", "GITHUB_ACTIONS", "GITLAB_CI") or name.startswith("JS7_"):
            monkeypatch.delenv(name, raising=False)
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """An empty Git repository."""
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def example_repo(tmp_path: Path) -> GitRepo:
    """A Git repository holding a copy of examples/certs (the README's example)."""
    repo = GitRepo(tmp_path / "repo")
    shutil.copytree(
        EXAMPLES, repo.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".js7certctl")
    )
    repo.commit("examples")
    return repo
