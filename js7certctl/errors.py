"""The exception tree and its mapping to exit codes.

Every error the tool raises on purpose derives from :class:`Js7CertCtlError`. The CLI catches
exactly that type at its one error boundary, prints ``str(error)`` as one clear message and exits
with ``error.exit_code``. Messages never contain a secret: callers must not put one in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from js7certctl.model import Problem

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130


class Js7CertCtlError(Exception):
    """An error that the CLI reports as one message, without a traceback."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  {self.hint}"
        return self.message


class UsageError(Js7CertCtlError):
    """A bad option or argument combination (exit 64)."""

    exit_code = EXIT_USAGE


class ConfigError(Js7CertCtlError):
    """The repository config cannot be used."""


class SourceError(Js7CertCtlError):
    """The manifests cannot be read (no repository, unknown revision, nothing found)."""


class ValidationFailed(Js7CertCtlError):
    """Manifests or config have errors; ``problems`` holds every one of them."""

    def __init__(self, problems: Sequence[Problem], message: str | None = None) -> None:
        self.problems = list(problems)
        errors = sum(1 for p in self.problems if p.is_error)
        super().__init__(message or f"{errors} error(s) in the manifests; nothing was changed.")


class CryptoError(Js7CertCtlError):
    """Encryption or decryption failed; the message never holds key material or plaintext."""


class PlanError(Js7CertCtlError):
    """The plan violates a policy (protected alias, too many deletes, ...)."""


class StalePlanError(Js7CertCtlError):
    """The live keystore changed since the plan was made."""

    def __init__(self, changed_aliases: Sequence[str]) -> None:
        self.changed_aliases = list(changed_aliases)
        shown = ", ".join(self.changed_aliases[:20])
        more = len(self.changed_aliases) - 20
        if more > 0:
            shown += f" and {more} more"
        super().__init__(
            f"the plan is stale: the live keystore changed since it was made ({shown}).",
            hint="Run `js7certctl plan` again and review the new plan.",
        )


class PlanFileError(Js7CertCtlError):
    """A saved plan file cannot be used (corrupt, wrong version, other target)."""


class BackendError(Js7CertCtlError):
    """The live keystore failed or refused a call."""


class LockError(BackendError):
    """Another process holds the keystore's lock."""


class ApplyError(Js7CertCtlError):
    """An apply stopped part way; the message says what was and was not applied."""
