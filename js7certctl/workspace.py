"""Where the user is: the repository, the config, the base folder and the source to read.

Ties :mod:`source`, :mod:`config` and :mod:`manifest` together the same way for every command.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from js7certctl.config import CONFIG_NAME, DEFAULT_KEYSTORE, Config, Target, parse_config
from js7certctl.errors import UsageError, ValidationFailed
from js7certctl.manifest import LoadResult, load_manifests
from js7certctl.model import Problem
from js7certctl.source import Location, Source, locate, open_source, worktree_dirty
from js7certctl.yamlnodes import MAX_FILE_BYTES, too_large


@dataclass(slots=True)
class Workspace:
    location: Location
    source: Source
    config: Config
    config_problems: list[Problem]
    base: str  # the base folder, relative to the root ("" = the root)

    @property
    def base_path(self) -> Path:
        return self.location.root / self.base if self.base else self.location.root

    def display(self, path: str) -> str:
        """A repository-relative path as the user should read it."""
        return path

    def keystore_path(self, target: Target) -> Path:
        """The embedded keystore file of a local target (always on disk, even with --ref)."""
        relative = target.path or DEFAULT_KEYSTORE
        path = Path(os.path.expanduser(relative))
        return path if path.is_absolute() else self.base_path / path

    def load(self, target: Target, *, now: datetime | None = None) -> LoadResult:
        """Load the manifests for ``target``; config problems come first."""
        policy = self.config.policy_for(target)
        result = load_manifests(
            self.source,
            base=self.base,
            entries=self.config.manifests_for(target),
            config_path=self.config.path,
            job_resource_folder=self.config.job_resource_folder_for(target),
            policy=policy,
            now=now or datetime.now(UTC),
        )
        result.problems[:0] = self.config_problems
        return result

    def load_valid(self, target: Target, *, now: datetime | None = None) -> LoadResult:
        """Like :meth:`load`, but raise :class:`ValidationFailed` when anything is an error."""
        if any(p.is_error for p in self.config_problems):
            raise ValidationFailed(
                self.config_problems, "the config has errors; nothing was changed."
            )
        result = self.load(target, now=now)
        if not result.ok:
            raise ValidationFailed(result.problems)
        return result


def open_workspace(
    *, repo: Path | None = None, config_file: Path | None = None, ref: str | None = None
) -> Workspace:
    """Find the repository and config from ``--repo``/``--config``/the current folder."""
    cwd = Path.cwd()
    explicit: Path | None = None
    if config_file is not None:
        explicit = (cwd / config_file) if not config_file.is_absolute() else config_file
        if ref is None and not explicit.is_file():
            raise UsageError(f"the config file {config_file} does not exist")
    start = repo if repo is not None else (explicit.parent if explicit is not None else cwd)
    location = locate(start if start.is_absolute() else cwd / start)
    source = open_source(location, ref)
    config_path: str | None = None
    if explicit is not None:
        real = os.path.realpath(explicit)
        rel = os.path.relpath(real, location.root)
        if rel.startswith(".."):
            raise UsageError(
                f"the config file {config_file} is outside {location.root}",
                hint="Use --repo to pick the repository that holds it.",
            )
        config_path = rel.replace(os.sep, "/")
        if source.kind(config_path) != "file":
            at = f" at {ref}" if ref else ""
            raise UsageError(f"the config file {config_path} does not exist{at}")
    else:
        folder = location.start
        while True:
            candidate = posixpath.join(folder, CONFIG_NAME) if folder else CONFIG_NAME
            if source.kind(candidate) == "file":
                config_path = candidate
                break
            if not folder:
                break
            folder = posixpath.dirname(folder)
    if config_path is not None:
        size = source.sizes([config_path])[config_path]
        if size > MAX_FILE_BYTES:  # never read whole: it could be any size
            problems = [too_large(config_path, size)]
            config = Config(path=config_path, problems=tuple(problems))
        else:
            data = source.read_many([config_path])[config_path]
            config, problems = parse_config(data, config_path)
        base = posixpath.dirname(config_path)
    else:
        config, problems = Config(), []
        base = location.start
    source.set_base(base, ref is None and worktree_dirty(location, base))
    return Workspace(
        location=location, source=source, config=config, config_problems=problems, base=base
    )
