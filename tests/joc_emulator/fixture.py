"""The pytest fixture ``joc_emulator`` and the subprocess helper ``joc_emulator_process``.

There is no ``tests/conftest.py``: a test module imports the fixture explicitly. The function
is ``joc_emulator_fixture`` and its pytest name is ``joc_emulator``, so that the parameters of
the tests do not shadow an imported name (ruff F811)::

    from tests.joc_emulator.fixture import joc_emulator_fixture  # noqa: F401

    def test_something(joc_emulator: JocEmulator) -> None:
        joc_emulator.config.force_comments = True
        httpx.post(joc_emulator.api_url + "/authentication/login", auth=("root", "root"))

``joc_emulator`` is an in-process :class:`~tests.joc_emulator.server.JocEmulator` on a free port
with the default configuration (``root``/``root``, every permission, MEDIUM, JOC 2.8.1), started
before and stopped after the test. ``.base_url`` is ``http://127.0.0.1:PORT``, ``.api_url`` adds
``/joc/api``; ``.config``, ``.state``, ``.add_fault(...)``, ``.calls``, ``.expire_sessions()``,
``.deploy_now()`` and ``.stop()`` are there for the test.

``joc_emulator_process(state_file)`` runs ``python -m tests.joc_emulator`` as a child process
instead, for tests that kill and restart it::

    with joc_emulator_process(tmp_path / "joc.json") as joc:
        ...                       # joc.base_url, joc.api_url
        joc.kill()                # SIGKILL: no clean shutdown
        joc.start()               # same port, same state file
"""

from __future__ import annotations

import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import pytest

from tests.joc_emulator.server import JocEmulator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="joc_emulator")
def joc_emulator_fixture() -> Iterator[JocEmulator]:
    """A running emulator for one test (in-process, random free port)."""
    emulator = JocEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


#: The same fixture under its pytest name. Importing this name works too, but ruff then reports
#: F811 at every test parameter called ``joc_emulator``; import ``joc_emulator_fixture`` instead.
joc_emulator = joc_emulator_fixture


class EmulatorProcess:
    """``python -m tests.joc_emulator`` as a child process; restartable on the same port."""

    def __init__(
        self,
        state_file: str | Path | None = None,
        *,
        args: Sequence[str] = (),
        port: int = 0,
        ca_file: str | Path | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.state_file = Path(state_file) if state_file is not None else None
        self.args = list(args)
        self.port = port
        self.ca_file = ca_file
        self.startup_timeout = startup_timeout
        self.base_url = ""
        self.output: list[str] = []  # the child's stdout lines
        self._process: subprocess.Popen[str] | None = None

    @property
    def api_url(self) -> str:
        return self.base_url + "/joc/api"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmulatorProcess:
        """Start the child (on the port of the previous run, if any) and wait until it answers."""
        if self.running:
            raise RuntimeError("the emulator process is already running")
        command = [sys.executable, "-m", "tests.joc_emulator", "--port", str(self.port)]
        if self.state_file is not None:
            command += ["--state", str(self.state_file)]
        command += self.args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )
        self._process = process
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            with process.stdout:  # closed at EOF, i.e. when the child has ended
                for line in process.stdout:
                    self.output.append(line)
                    lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name="joc-emulator-stdout", daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        try:
            url = self._wait_for_url(lines, deadline)
            self.base_url = url
            self.port = int(urlsplit(url).port or 0)
            self._wait_until_answering(deadline)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_for_url(self, lines: queue.Queue[str | None], deadline: float) -> str:
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise RuntimeError("the JOC emulator process did not print its URL") from None
            if line is None:
                raise RuntimeError("the JOC emulator process exited during start-up")
            match = re.search(r"listening on (\S+)", line)
            if match:
                return match.group(1)

    def _wait_until_answering(self, deadline: float) -> None:
        context: ssl.SSLContext | None = None
        if self.base_url.startswith("https:"):
            if self.ca_file is not None:
                context = ssl.create_default_context(cafile=str(self.ca_file))
            else:  # readiness probe only: nothing secret is sent
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        while True:
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own http(s) URL
                    self.api_url + "/version", timeout=2, context=context
                ) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if not self.running:
                raise RuntimeError("the JOC emulator process exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("the JOC emulator process does not answer")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL: the emulator gets no chance to clean up (a crash)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, *, kill: bool = True) -> EmulatorProcess:
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def __enter__(self) -> EmulatorProcess:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def joc_emulator_process(
    state_file: str | Path | None = None,
    *args: str,
    ca_file: str | Path | None = None,
) -> Iterator[EmulatorProcess]:
    """Run ``python -m tests.joc_emulator ARGS`` on a free port until the block ends."""
    process = EmulatorProcess(state_file, args=args, ca_file=ca_file)
    with process:
        yield process
