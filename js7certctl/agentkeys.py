"""`keys new`: an Agent key pair, its certificate (or CSR) and manifest; the key kept out of Git.

Everything is checked before anything is written: the alias (JS7 naming rules, not already in the
manifests), every output path (none may exist: nothing is ever overwritten), and the private key's
path (outside every Git work tree, unless Git ignores it). Then the key is created first, with
mode 0600, so that a failure later never leaves a certificate without its key.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from js7certctl.errors import Js7CertCtlError, UsageError
from js7certctl.source import child_env

__all__ = [
    "KeyLocationError",
    "NewKeyFiles",
    "check_key_location",
    "covered",
    "manifest_text",
    "pick_manifest_dir",
]


class KeyLocationError(Js7CertCtlError):
    """The private key would land where Git could commit it, or its path is unusable."""


@dataclass(frozen=True, slots=True)
class NewKeyFiles:
    """Where `keys new` writes: the key, and the certificate and manifest or the CSR."""

    key: Path
    certificate: Path | None
    manifest: Path | None
    csr: Path | None


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(folder), *args],
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env=child_env(),
    )


def _has_git_folder(folder: Path) -> bool:
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))


def check_key_location(path: Path) -> Path:
    """The absolute path to write a new private key to, or :class:`KeyLocationError`.

    Refuses an existing file or folder, a missing parent folder, and a path inside a Git work tree
    that Git does not ignore (``git check-ignore``), so the key cannot be committed by accident.
    """
    absolute = Path(os.path.abspath(path))
    if absolute.is_dir():
        raise KeyLocationError(f"--key-out {path} is a folder; give the path of the key file.")
    if absolute.exists() or absolute.is_symlink():
        raise KeyLocationError(
            f"--key-out {path} already exists; js7certctl never overwrites a key.",
            hint="Choose another path, or move the old key away first.",
        )
    parent = Path(os.path.realpath(absolute.parent))
    if not parent.is_dir():
        raise KeyLocationError(
            f"the folder of --key-out {path} does not exist; create it first "
            "(readable only by you, e.g. `mkdir -m 700`)."
        )
    target = parent / absolute.name
    try:
        top = _git(parent, "rev-parse", "--show-toplevel")
    except FileNotFoundError:
        if _has_git_folder(parent):
            raise KeyLocationError(
                f"--key-out {path} is inside a Git repository, and without the `git` command "
                "js7certctl cannot check that Git ignores it.",
                hint="Write the key outside the repository, or install Git.",
            ) from None
        return target
    if top.returncode != 0:
        return target  # not inside a work tree
    root = Path(os.fsdecode(top.stdout.strip()))
    relative = os.path.relpath(target, root)
    ignored = _git(root, "check-ignore", "-q", "--", relative)
    if ignored.returncode == 0:
        return target
    if ignored.returncode == 1:
        raise KeyLocationError(
            f"--key-out {path} is inside the Git work tree {root} and not ignored by Git, so the "
            "private key could be committed; nothing was written.",
            hint="Write it outside the repository (e.g. --key-out ~/agent-keys/ALIAS.key), "
            f"or add the path to .gitignore first (e.g. `echo '*.key' >> {root}/.gitignore`).",
        )
    raise KeyLocationError(
        f"Git could not tell whether --key-out {path} is ignored "
        f"(git check-ignore exited {ignored.returncode}); nothing was written.",
        hint="Write the key outside the Git work tree.",
    )


def pick_manifest_dir(base: Path, entries: tuple[str, ...]) -> Path:
    """The first folder among the config's ``manifests`` entries (files are skipped)."""
    for entry in entries:
        candidate = base / entry
        if candidate.is_dir():
            return candidate
        if not candidate.exists() and not entry.endswith((".yaml", ".yml")):
            return candidate  # a folder still to be made
    raise UsageError(
        "the config's `manifests` lists no folder to write the new manifest to.",
        hint="Name one with --manifest-dir DIR.",
    )


def covered(path: Path, base: Path, entries: tuple[str, ...]) -> bool:
    """Whether a manifest at ``path`` is found by the config's ``manifests`` entries."""
    real = Path(os.path.realpath(path))
    for entry in entries:
        root = Path(os.path.realpath(base / entry))
        if real == root or root in real.parents:
            return True
    return False


def _quoted(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: aliases such as `true`, `1.0` or
    # `null` stay strings.
    return json.dumps(text, ensure_ascii=False)


def manifest_text(
    alias: str, certificate_file: str, private_key_path: str | None, *, generated: str
) -> str:
    """The YAML manifest written by `keys new`."""
    lines = [
        f"# Made by `js7certctl keys new` on {generated}. The private key is not in this",
        "# repository: install it on the Agents at privateKeyPath, readable only by their user.",
        "apiVersion: js7certctl/v1",
        "kind: EncryptionCertificate",
        "metadata:",
        f"  alias: {_quoted(alias)}",
        "spec:",
        f"  certificateFile: {_quoted(certificate_file)}",
    ]
    if private_key_path is not None:
        lines.append(f"  privateKeyPath: {_quoted(private_key_path)}")
    return "\n".join(lines) + "\n"
