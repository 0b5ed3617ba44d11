"""Run the js7certctl CLI in this process, pausing around the K-th SQLite write transaction.

    python -m tests.pausing_cli K before|after READY_FD RESUME_FD -- js7certctl arguments...

The seam is the sqlite3 library, not js7certctl: ``sqlite3.connect`` is wrapped so that every
connection is a subclass that counts ``BEGIN IMMEDIATE`` transactions (the embedded keystore's
writes; read transactions are not counted). Around the K-th one's ``COMMIT`` (just ``before`` it,
inside the open transaction, or just ``after`` it) the process writes one byte to READY_FD and
blocks reading RESUME_FD: the test then SIGKILLs it, or writes a byte to let it go on (closing
RESUME_FD lets it go on too). Nothing in js7certctl knows about this module.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import GIT_ENV, PROJECT_ROOT


def main(argv: list[str]) -> None:
    if len(argv) < 5 or argv[4] != "--":
        raise SystemExit(
            "usage: python -m tests.pausing_cli K before|after READY_FD RESUME_FD -- ARGS"
        )
    pause_at, phase, ready_fd, resume_fd = int(argv[0]), argv[1], int(argv[2]), int(argv[3])
    if phase not in ("before", "after"):
        raise SystemExit("the phase is before or after")
    state = {"writes": 0, "in_write": False}

    def pause() -> None:
        os.write(ready_fd, b"p")
        os.read(resume_fd, 1)

    class PausingConnection(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            statement = sql.strip().upper()
            if statement == "BEGIN IMMEDIATE":
                state["writes"] += 1
                state["in_write"] = True
            if statement != "COMMIT" or not state["in_write"]:
                return super().execute(sql, *args)
            state["in_write"] = False
            here = state["writes"] == pause_at
            if here and phase == "before":
                pause()
            cursor = super().execute(sql, *args)
            if here and phase == "after":
                pause()
            return cursor

    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs["factory"] = PausingConnection
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        return connection

    sqlite3.connect = connect  # type: ignore[assignment]
    sys.argv = ["js7certctl", *argv[5:]]
    from js7certctl.cli import main as cli_main

    cli_main()


class PausedRun:
    """The parent's side: start ``js7certctl ARGS`` under this module and wait for the pause."""

    def __init__(self, args: list[str], *, pause_at: int, phase: str, cwd: Path) -> None:
        ready_read, ready_write = os.pipe()
        resume_read, resume_write = os.pipe()
        env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(PROJECT_ROOT)}
        self._ready = ready_read
        self._resume = resume_write
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.pausing_cli",
                str(pause_at),
                phase,
                str(ready_write),
                str(resume_read),
                "--",
                *args,
            ],
            cwd=cwd,
            env=env,
            pass_fds=(ready_write, resume_read),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(ready_write)
        os.close(resume_read)

    def paused(self, timeout: float = 60.0) -> bool:
        """True once the child pauses; False when it ended without reaching the pause point."""
        readable, _, _ = select.select([self._ready], [], [], timeout)
        if not readable:
            self.proc.kill()
            raise AssertionError(f"the child neither paused nor ended within {timeout} s")
        return os.read(self._ready, 1) == b"p"

    def kill(self) -> None:
        """SIGKILL: no handler, no cleanup, no rollback by the process itself."""
        self.proc.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self) -> tuple[int, str, str]:
        """Let the child go on (if paused) and wait for it: exit code, stdout, stderr."""
        with contextlib.suppress(OSError):
            os.close(self._resume)
        out, err = self.proc.communicate(timeout=60)
        with contextlib.suppress(OSError):
            os.close(self._ready)
        return self.proc.returncode, out, err


if __name__ == "__main__":
    main(sys.argv[1:])
