"""Files at a Git revision or in the working tree (the only module that runs git).

Paths handed in and out are repository-relative POSIX paths ("certs/a.yaml"). ``resolve`` follows
symlinks inside the tree (with a hop limit) and refuses any that lead out of it. At a revision the
tree is listed once (``git ls-tree -r``) and blobs are read by object id in one
``git cat-file --batch`` call, because looking paths up one by one is quadratic in large folders.
"""

from __future__ import annotations

import os
import posixpath
import stat
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from js7certctl.errors import SourceError, UsageError

MAX_SYMLINK_HOPS = 40
_SYMLINK_MODE = "120000"


class PathEscape(Exception):
    """A path leaves the repository (or is a symlink loop); ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SourceInfo:
    repository: str | None  # absolute path of the Git work tree, None outside Git
    revision: str | None  # the commit read (or HEAD for the working tree), None outside Git
    ref: str | None  # what --ref asked for; None = the working tree
    dirty: bool  # the working tree had uncommitted changes under the base folder
    base: str = ""  # base folder, relative to the root ("" = the root)

    @property
    def short_revision(self) -> str | None:
        return self.revision[:12] if self.revision else None

    def describe(self) -> str:
        if self.ref is not None and self.revision:
            return f"{self.ref} ({self.revision[:12]})"
        if self.revision:
            return f"the working tree at {self.revision[:12]}" + (
                " with uncommitted changes" if self.dirty else ""
            )
        return "the working tree"


class Source(Protocol):
    @property
    def info(self) -> SourceInfo: ...

    @property
    def root(self) -> Path: ...

    def kind(self, path: str) -> str:
        """ "file", "dir", "missing" or "other" (a pipe, socket or device) for a resolved path
        (no symlinks left in it)."""
        ...

    def resolve(self, path: str) -> str:
        """Follow symlinks; the resulting path inside the tree, or raise :class:`PathEscape`."""
        ...

    def walk(self, folder: str) -> list[str]:
        """Files under a resolved folder, recursively, skipping dot entries, sorted."""
        ...

    def sizes(self, paths: list[str]) -> dict[str, int]:
        """Sizes in bytes of resolved files, without reading them (to refuse huge ones)."""
        ...

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """Contents of resolved files."""
        ...

    def set_base(self, base: str, dirty: bool) -> None:
        """Record the base folder (the config's folder) and whether it had local changes."""
        ...


def normalize(path: str) -> str:
    """Normalise a repository-relative path; ".." that climbs out raises PathEscape."""
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or path.startswith("\\"):
        raise PathEscape("it is an absolute path; use a path relative to the manifest")
    norm = posixpath.normpath(path.replace("\\", "/")) if path else "."
    if norm == ".." or norm.startswith("../"):
        raise PathEscape("it climbs out of the repository with '..'")
    return "" if norm == "." else norm


def _skip(name: str) -> bool:
    return name.startswith(".")


class WorktreeSource:
    """The files on disk under ``root``."""

    def __init__(self, root: Path, info: SourceInfo) -> None:
        self._root = root
        self._info = info
        self._real_root = os.path.realpath(root)
        self._plain: set[str] = set()  # regular files (no symlink on the way) seen by walk()
        self._real_folders: dict[str, str | None] = {}  # folder -> real path, None: no shortcut

    @property
    def info(self) -> SourceInfo:
        return self._info

    def set_base(self, base: str, dirty: bool) -> None:
        self._info = replace(self._info, base=base, dirty=dirty)

    @property
    def root(self) -> Path:
        return self._root

    def _abs(self, path: str) -> str:
        return os.path.join(self._real_root, path) if path else self._real_root

    def resolve(self, path: str) -> str:
        norm = normalize(path)
        if norm in self._plain:
            return norm
        parent, _, name = norm.rpartition("/")
        if name:
            fast = self._resolve_in_folder(parent, name)
            if fast is not None:
                return fast
        try:
            real = str(Path(self._abs(norm)).resolve(strict=False))
        except RuntimeError as exc:  # Python < 3.13 reports loops this way
            raise PathEscape("it is a symlink loop") from exc
        except OSError as exc:
            raise PathEscape(f"it cannot be resolved ({exc.strerror})") from exc
        if os.path.islink(real) or _is_loop(self._abs(norm)):
            raise PathEscape("it is a symlink loop")
        if real != self._real_root and not real.startswith(self._real_root + os.sep):
            raise PathEscape("it is a symlink that leads out of the repository")
        rel = os.path.relpath(real, self._real_root)
        return "" if rel == "." else rel.replace(os.sep, "/")

    def _resolve_in_folder(self, parent: str, name: str) -> str | None:
        """What :meth:`resolve` gives for ``parent/name`` when ``parent`` resolves to a real
        folder and ``name`` is no symlink, from the folder's cached real path (one ``lstat``
        instead of one per path component); None when the full resolution is needed."""
        if parent not in self._real_folders:
            real = os.path.realpath(self._abs(parent))
            # A folder's real path has no symlink left (a loop would leave one, or fail stat).
            usable = os.path.isdir(real) and not os.path.islink(real)
            self._real_folders[parent] = real if usable else None
        folder = self._real_folders[parent]
        if folder is None:
            return None
        candidate = os.path.join(folder, name)
        try:
            if stat.S_ISLNK(os.lstat(candidate).st_mode):
                return None
        except FileNotFoundError:
            pass  # resolves to itself, as Path.resolve(strict=False) does
        except (OSError, ValueError):
            return None
        prefix = self._real_root + os.sep
        if not candidate.startswith(prefix):
            return None  # outside the repository: the full resolution says how
        return candidate[len(prefix) :].replace(os.sep, "/")

    def kind(self, path: str) -> str:
        if path in self._plain:
            return "file"
        full = self._abs(path)
        try:
            mode = os.stat(full).st_mode
        except (OSError, ValueError):
            # A broken symlink (or one that cannot be followed) exists, but is no file.
            return "other" if os.path.lexists(full) else "missing"
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        return "other"  # a pipe would block the read, a device never end

    def walk(self, folder: str) -> list[str]:
        # Symlinks to folders are not followed (as os.walk does); regular files found here are
        # remembered, so that resolving them needs no system call.
        found: list[str] = []
        prefix = len(self._real_root) + 1
        stack = [self._abs(folder)]
        while stack:
            try:
                with os.scandir(stack.pop()) as entries:
                    listed = list(entries)
            except OSError:
                continue
            for entry in listed:
                if _skip(entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                rel = entry.path[prefix:].replace(os.sep, "/")
                if entry.is_file(follow_symlinks=False):
                    self._plain.add(rel)
                elif entry.is_symlink() and _points_to_dir(entry):
                    continue
                found.append(rel)
        return sorted(found)

    def sizes(self, paths: list[str]) -> dict[str, int]:
        result: dict[str, int] = {}
        for path in paths:
            try:
                result[path] = os.stat(self._abs(path)).st_size
            except OSError as exc:
                raise _unreadable(path, exc) from None
        return result

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        result: dict[str, bytes] = {}
        for path in paths:
            try:
                result[path] = _read_file(self._abs(path))
            except OSError as exc:
                raise _unreadable(path, exc) from None
        return result


def _read_file(path: str) -> bytes:
    """The file's bytes, with plain ``os.read`` calls (half the cost of ``open().read()``, which
    counts for 20,000 small files)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _unreadable(path: str, exc: OSError) -> SourceError:
    return SourceError(
        f"cannot read {path}: {exc.strerror or exc}",
        hint="Check that the file exists and is readable by this user.",
    )


def _points_to_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop
        return False


def _is_loop(path: str) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == 40  # ELOOP
    return False


class GitTreeSource:
    """The files of one commit's tree; the working tree is never read."""

    def __init__(self, git_dir_root: Path, commit: str, info: SourceInfo) -> None:
        self._root = git_dir_root
        self._commit = commit
        self._info = info
        self._files: dict[str, tuple[str, str]] = {}  # path -> (mode, object id)
        self._dirs: set[str] = {""}
        self._cache: dict[str, bytes] = {}
        self._sizes: dict[str, int] = {}  # object id -> size
        # With --long, each blob's size too: sizes() then needs no other Git call.
        out = _git(git_dir_root, "ls-tree", "-r", "-z", "--long", "--full-tree", commit)
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, otype, oid, size = meta.decode().split()
            if otype != "blob":
                continue  # submodules
            path = raw_path.decode("utf-8", "surrogateescape")
            self._files[path] = (mode, oid)
            self._sizes[oid] = int(size)
            # Git paths have no empty components: the folder is what precedes the last "/"
            # (posixpath.dirname gives the same, slower).
            parent = path.rpartition("/")[0]
            while parent not in self._dirs:
                self._dirs.add(parent)
                parent = parent.rpartition("/")[0]

    @property
    def info(self) -> SourceInfo:
        return self._info

    def set_base(self, base: str, dirty: bool) -> None:
        self._info = replace(self._info, base=base, dirty=dirty)

    @property
    def root(self) -> Path:
        return self._root

    def resolve(self, path: str) -> str:
        norm = normalize(path)
        entry = self._files.get(norm)
        if (entry is not None and entry[0] != _SYMLINK_MODE) or norm in self._dirs:
            # ls-tree -r lists only what lies below trees, never below a symlink: a listed file
            # or folder has no symlink on its way and is no symlink itself.
            return norm
        parts = norm.split("/") if norm else []
        hops = 0
        resolved: list[str] = []
        while parts:
            part = parts.pop(0)
            candidate = "/".join([*resolved, part])
            entry = self._files.get(candidate)
            if entry is not None and entry[0] == _SYMLINK_MODE:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise PathEscape("it is a symlink loop")
                target = self._read_blobs([entry[1]])[entry[1]].decode("utf-8", "replace")
                if target.startswith("/"):
                    raise PathEscape("it is a symlink that leads out of the repository")
                joined = posixpath.normpath(posixpath.join("/".join(resolved), target))
                if joined == ".." or joined.startswith("../"):
                    raise PathEscape("it is a symlink that leads out of the repository")
                parts = ([] if joined == "." else joined.split("/")) + parts
                resolved = []
                continue
            resolved.append(part)
        return "/".join(resolved)

    def kind(self, path: str) -> str:
        if path in self._dirs:
            return "dir"
        if path in self._files:
            return "file"
        return "missing"

    def walk(self, folder: str) -> list[str]:
        prefix = f"{folder}/" if folder else ""
        found = []
        for path in self._files:
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if any(_skip(part) for part in rest.split("/")):
                continue
            found.append(path)
        return sorted(found)

    def sizes(self, paths: list[str]) -> dict[str, int]:
        oids = {path: self._files[path][1] for path in paths}
        missing = sorted({oid for oid in oids.values() if oid not in self._sizes})
        if missing:
            out = _git(self._root, "cat-file", "--batch-check", stdin="\n".join(missing) + "\n")
            for oid, line in zip(missing, out.decode().splitlines(), strict=True):
                fields = line.split(" ")
                if len(fields) != 3:
                    raise SourceError(f"Git could not read object {oid}: {line}")
                self._sizes[oid] = int(fields[2])
        return {path: self._sizes[oid] for path, oid in oids.items()}

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        oids = {path: self._files[path][1] for path in paths}
        blobs = self._read_blobs(list(set(oids.values())))
        return {path: blobs[oid] for path, oid in oids.items()}

    def _read_blobs(self, oids: list[str]) -> dict[str, bytes]:
        missing = [oid for oid in oids if oid not in self._cache]
        if missing:
            data = _git(self._root, "cat-file", "--batch", stdin="\n".join(missing) + "\n")
            pos = 0
            for oid in missing:
                header_end = data.index(b"\n", pos)
                header = data[pos:header_end].decode()
                fields = header.split(" ")
                if len(fields) != 3:
                    raise SourceError(f"Git could not read object {oid}: {header}")
                size = int(fields[2])
                start = header_end + 1
                self._cache[oid] = data[start : start + size]
                pos = start + size + 1
        return {oid: self._cache[oid] for oid in oids}


_CHILD_ENV_NAMES = frozenset(
    ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "XDG_CONFIG_HOME")
)


def child_env() -> dict[str, str]:
    """The environment for git: only what git uses (PATH, HOME, locale, GIT_* ...), never the
    JOC password or a variable that a secret was read from."""
    return {
        k: v
        for k, v in os.environ.items()
        if k in _CHILD_ENV_NAMES or k.startswith(("GIT_", "LC_"))
    }


def _git(root: Path, *args: str, stdin: str | None = None) -> bytes:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            check=False,
            env=child_env(),
        )
    except FileNotFoundError as exc:
        raise SourceError("the `git` command was not found; install Git") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SourceError(f"git {args[0]} failed: {message[-1] if message else proc.returncode}")
    return proc.stdout


@dataclass(frozen=True, slots=True)
class Location:
    """Where the user is: the root of the tree read, and the start folder relative to it."""

    root: Path
    start: str  # the folder to search the config from, relative to root
    repo: Any  # the Git work tree (_Repository), or None


def locate(start_dir: Path) -> Location:
    """Find the Git repository containing ``start_dir`` (or use the folder itself outside Git)."""
    if not start_dir.exists():
        raise UsageError(f"the folder {start_dir} does not exist")
    if not start_dir.is_dir():
        raise UsageError(f"{start_dir} is not a folder")
    real = Path(os.path.realpath(start_dir))
    repo = _find_repo(real)
    if repo is None or repo.working_tree_dir is None:
        return Location(root=real, start="", repo=None)
    root = Path(os.path.realpath(repo.working_tree_dir))
    rel = os.path.relpath(real, root)
    return Location(root=root, start="" if rel == "." else rel.replace(os.sep, "/"), repo=repo)


class _Repository:
    """A Git work tree, found and read with the ``git`` command.

    GitPython's import alone takes about 0.13 s, longer than reading 1,000 manifests, so the
    few questions asked here (where is the work tree, which commit is a revision) go to
    ``git rev-parse``, like every other Git call of this module.
    """

    __slots__ = ("working_tree_dir",)

    def __init__(self, working_tree_dir: str) -> None:
        self.working_tree_dir = working_tree_dir

    def __repr__(self) -> str:
        return f"_Repository({self.working_tree_dir!r})"

    def commit(self, ref: str) -> str | None:
        """The commit a revision names (tags peeled), or None when there is none."""
        proc = _run_git(
            Path(self.working_tree_dir), "rev-parse", "--verify", "-q", ref + "^{commit}"
        )
        out = proc.stdout.decode("ascii", "replace").strip()
        return out if proc.returncode == 0 and out else None


# Messages of `git rev-parse --show-toplevel` (run with LC_ALL=C) that mean "no work tree here".
_NOT_A_WORK_TREE = ("not a git repository", "must be run in a work tree")


def _find_repo(path: Path) -> _Repository | None:
    proc = _run_git(path, "rev-parse", "--show-toplevel")
    if proc.returncode == 0:
        top = os.fsdecode(proc.stdout).rstrip("\n")
        return _Repository(top) if top else None
    message = proc.stderr.decode("utf-8", "replace").strip()
    if any(text in message for text in _NOT_A_WORK_TREE):
        return None
    first = message.splitlines()[0] if message else f"exit code {proc.returncode}"
    raise SourceError(f"Git cannot read the repository at {path}: {first}")


def _run_git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``git -C root ARGS`` with untranslated messages; the caller looks at the exit code."""
    env = {**child_env(), "LC_ALL": "C", "LANGUAGE": "C"}
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, check=False, env=env
        )
    except FileNotFoundError as exc:
        raise SourceError("the `git` command was not found; install Git") from exc


def open_source(location: Location, ref: str | None) -> Source:
    """The tree at ``ref`` (a branch, tag or commit), or the working tree when ``ref`` is None."""
    repo = location.repo
    if ref is not None:
        if repo is None:
            raise SourceError(
                f"--ref needs a Git repository, and {location.root} is not inside one",
                hint="Run without --ref to read the files in this folder.",
            )
        commit = resolve_revision(repo, ref)
        info = SourceInfo(repository=str(location.root), revision=commit, ref=ref, dirty=False)
        return GitTreeSource(location.root, commit, info)
    if repo is None:
        return WorktreeSource(
            location.root, SourceInfo(repository=None, revision=None, ref=None, dirty=False)
        )
    info = SourceInfo(
        repository=str(location.root), revision=_head_commit(repo), ref=None, dirty=False
    )
    return WorktreeSource(location.root, info)


def worktree_dirty(location: Location, base: str) -> bool:
    """Whether the working tree has uncommitted (or untracked) changes under ``base``."""
    if location.repo is None:
        return False
    # The embedded keystore's folder is never part of the source, even when not git-ignored.
    spec = [base or ".", ":(exclude,glob)**/.js7certctl/**"]
    return bool(_git(location.root, "status", "--porcelain", "--", *spec).strip())


def resolve_revision(repo: Any, ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise UsageError(f"invalid revision {ref!r}: a revision must not start with '-'")
    commit = repo.commit(ref)
    if commit is None:
        raise SourceError(
            f"unknown revision {ref!r} in {repo.working_tree_dir}",
            hint="Name a branch, tag or commit that exists (is it fetched?).",
        )
    return str(commit)


def _head_commit(repo: Any) -> str | None:
    """The commit checked out, or None in a repository without commits."""
    commit = repo.commit("HEAD")
    return None if commit is None else str(commit)
