"""Reading secrets and writing files derived from them, never echoing a secret.

Secrets come from stdin, a file, an environment variable or a hidden prompt on the terminal, never
from a command-line argument. Files that hold plaintext (or anything derived from secrets) are
written with mode 0600, replacing an existing file atomically; files that must never be
overwritten (private keys, manifests) are created exclusively. Error messages name files and
variables, never their content.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from js7certctl.errors import Js7CertCtlError

__all__ = [
    "NoTerminalError",
    "SecretInputError",
    "drop_one_newline",
    "read_env",
    "read_file",
    "read_hidden",
    "stdin_is_terminal",
    "terminal_available",
    "write_file_atomic",
    "write_new_file",
    "write_private_file",
]

PRIVATE_MODE = 0o600
_TTY = "/dev/tty"


class SecretInputError(Js7CertCtlError):
    """A secret, key, value or password could not be read (the message never holds it)."""


class NoTerminalError(SecretInputError):
    """A hidden prompt was needed but there is no terminal to ask on."""


def drop_one_newline(data: bytes) -> bytes:
    """Drop exactly one trailing line break (``\\n`` or ``\\r\\n``), as a shell ``echo`` adds."""
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def read_file(path: Path, what: str) -> bytes:
    """The bytes of ``path``; ``what`` names it in errors (``the secret file``)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SecretInputError(f"{what} {path} does not exist.") from None
    except IsADirectoryError:
        raise SecretInputError(f"{what} {path} is a folder, not a file.") from None
    except OSError as exc:
        raise SecretInputError(f"{what} {path} cannot be read: {_os_reason(exc)}.") from None


def read_env(name: str, what: str) -> bytes:
    """The value of the environment variable ``name`` as bytes (as the OS holds it)."""
    if not name or "=" in name:
        raise SecretInputError(f"{name!r} is not an environment variable name ({what}).")
    value = os.environ.get(name)
    if value is None:
        raise SecretInputError(
            f"the environment variable {name} ({what}) is not set.",
            hint=f"Export it first, e.g. `read -rs {name} && export {name}`.",
        )
    return value.encode("utf-8", "surrogateescape")


def stdin_is_terminal() -> bool:
    """Whether stdin is an interactive terminal (then secrets are asked for, hidden)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def terminal_available() -> bool:
    """Whether this process has a controlling terminal to prompt on (``/dev/tty``)."""
    try:
        fd = os.open(_TTY, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def read_hidden(prompt: str) -> bytes:
    """Ask on the controlling terminal with echo off and return the line typed, without its
    line break. Raises :class:`NoTerminalError` when there is no terminal.

    Reads ``/dev/tty`` directly (never stdin, which may carry other input), like ``getpass``
    without its fallback to stdin with echo on.
    """
    try:
        import termios
    except ImportError:  # not a POSIX system
        raise NoTerminalError("there is no terminal to ask on.") from None
    try:
        fd = os.open(_TTY, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise NoTerminalError("there is no terminal to ask on.") from None
    try:
        try:
            old = termios.tcgetattr(fd)
        except termios.error:
            raise NoTerminalError("there is no terminal to ask on.") from None
        new = list(old)
        new[3] = old[3] & ~termios.ECHO
        # Echo off first, then the prompt: whatever is typed after the prompt is never shown
        # (and never discarded by the flush).
        termios.tcsetattr(fd, termios.TCSAFLUSH, new)
        try:
            os.write(fd, prompt.encode("utf-8", "replace"))
            line = _read_line(fd)
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
            os.write(fd, b"\n")
    finally:
        os.close(fd)
    if line is None:
        raise SecretInputError("the input ended before a line was entered; nothing was done.")
    return line


def _read_line(fd: int) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks) if chunks else None
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return drop_one_newline(b"".join(chunks))


def write_private_file(path: Path, data: bytes, *, what: str = "the output file") -> None:
    """Write ``data`` to ``path`` with mode 0600, replacing an existing file atomically.

    The content goes to a new 0600 file beside ``path`` that is then renamed over it, so the file
    is never readable by others, not even for a moment, and never half-written.
    """
    write_file_atomic(path, data, mode=PRIVATE_MODE, what=what)


def _umask() -> int:
    current = os.umask(0o077)
    os.umask(current)
    return current


def write_file_atomic(
    path: Path, data: bytes, *, mode: int | None = None, what: str = "the output file"
) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it (never half-written).

    ``mode`` None gives a new file's usual mode (0666 less the umask); 0600 is for anything
    derived from secrets.
    """
    if mode is None:
        mode = 0o666 & ~_umask()
    if path.is_dir():
        raise SecretInputError(f"{what} {path} is a folder; give a file name.")
    if path.exists() and not path.is_file():
        raise SecretInputError(f"{what} {path} exists and is not a regular file.")
    folder = path.parent
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise SecretInputError(f"the folder of {what} {path} does not exist.") from None
    except OSError as exc:
        raise SecretInputError(f"{what} {path} cannot be written: {_os_reason(exc)}.") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise SecretInputError(f"{what} {path} cannot be written: {_os_reason(exc)}.") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_new_file(path: Path, data: bytes, *, mode: int = 0o644, what: str = "the file") -> None:
    """Create ``path`` with ``data``; never overwrites anything (not even through a symlink).

    ``mode`` 0600 is set exactly; other modes are subject to the umask, like any new file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise SecretInputError(
            f"{what} {path} already exists; js7certctl never overwrites it.",
            hint="Move it away or choose another path.",
        ) from None
    except FileNotFoundError:
        raise SecretInputError(f"the folder of {what} {path} does not exist.") from None
    except OSError as exc:
        raise SecretInputError(f"{what} {path} cannot be created: {_os_reason(exc)}.") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode == PRIVATE_MODE:
                os.fchmod(handle.fileno(), PRIVATE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise SecretInputError(f"{what} {path} cannot be written: {_os_reason(exc)}.") from None
