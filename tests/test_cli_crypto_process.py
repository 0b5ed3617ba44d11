"""`encrypt` and `decrypt` as separate processes: stdin pipes, environment variables, and hidden
prompts typed into a real pseudo-terminal (the secret must never be echoed)."""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from tests import certgen
from tests import js7_reference as ref
from tests.helpers import GIT_ENV, PROJECT_ROOT, SHARED, run_process

VECTORS = SHARED / "vectors"
TIMEOUT = 30.0

pty = pytest.importorskip("pty")


def _cert(tmp_path: Path) -> Path:
    path = tmp_path / "agent.crt"
    path.write_text(certgen.make_cert(certgen.ec_key("P-256"), cn="agent"), encoding="ascii")
    return path


def test_encrypt_reads_a_piped_secret_and_decrypt_reads_a_piped_value(tmp_path: Path) -> None:
    cert = _cert(tmp_path)
    encrypted = run_process("encrypt", "--cert", str(cert), cwd=tmp_path, input=b"piped-secret\n")
    assert encrypted.returncode == 0, encrypted.stderr
    assert encrypted.stderr == ""
    assert ref.decrypt(certgen.ec_key("P-256"), encrypted.stdout) == b"piped-secret"

    key = tmp_path / "agent.key"
    key.write_text(certgen.private_key_pem(certgen.ec_key("P-256")), encoding="ascii")
    decrypted = run_process(
        "decrypt", "--key", str(key), cwd=tmp_path, input=encrypted.stdout.encode()
    )
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == "piped-secret"


def test_secrets_from_the_environment_never_reach_the_output(tmp_path: Path) -> None:
    cert = _cert(tmp_path)
    env = {"DB_PASSWORD": "env-secret-value", "KEY_PW": "jobscheduler"}
    encrypted = run_process(
        "encrypt", "--cert", str(cert), "--from-env", "DB_PASSWORD", cwd=tmp_path, env=env
    )
    assert encrypted.returncode == 0, encrypted.stderr
    assert "env-secret-value" not in encrypted.stdout + encrypted.stderr
    assert ref.decrypt(certgen.ec_key("P-256"), encrypted.stdout) == b"env-secret-value"

    # A value for another key: one clear error, no traceback, no password.
    wrong = run_process(
        "decrypt",
        "--key",
        str(VECTORS / "rsa2048.enc.pkcs8.key"),
        "--key-password-env",
        "KEY_PW",
        cwd=tmp_path,
        env=env,
        input=encrypted.stdout.encode(),
    )
    assert wrong.returncode == 1
    assert wrong.stdout == ""
    assert wrong.stderr.startswith("Error: this value was not encrypted for this key")
    assert "Traceback" not in wrong.stderr
    assert "jobscheduler" not in wrong.stderr


def _run_on_terminal(
    args: list[str], answers: list[tuple[bytes, bytes]], stdin: bytes | None = None
) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as its controlling terminal, stdout and stderr.

    ``answers``: (prompt text to wait for, line to type). With ``stdin`` the process reads that
    from a pipe instead of the terminal. Returns the exit code and everything the terminal showed.
    """
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(PROJECT_ROOT), "NO_COLOR": "1"}
    pipe = os.pipe() if stdin is not None else None
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes js7certctl
        try:
            if pipe is not None:
                os.dup2(pipe[0], 0)
                os.close(pipe[0])
                os.close(pipe[1])
            os.execve(sys.executable, [sys.executable, "-m", "js7certctl", *args], env)  # noqa: S606
        finally:
            os._exit(127)
    if pipe is not None:
        assert stdin is not None
        os.close(pipe[0])
        os.write(pipe[1], stdin)
        os.close(pipe[1])
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and pending[0][0] in shown:
                prompt, line = pending.pop(0)
                shown = shown.replace(prompt, b"<" + prompt + b">", 1)  # consume the prompt
                os.write(fd, line + b"\n")
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown


def test_encrypt_on_a_terminal_asks_twice_and_never_echoes(tmp_path: Path) -> None:
    cert = _cert(tmp_path)
    code, shown = _run_on_terminal(
        ["encrypt", "--cert", str(cert)],
        [(b"(input hidden): ", b"typed-on-tty"), (b"again: ", b"typed-on-tty")],
    )
    assert code == 0, shown
    assert b"typed-on-tty" not in shown  # echo was off while typing
    line = next(x for x in shown.decode().splitlines() if x.startswith("enc:"))
    assert ref.decrypt(certgen.ec_key("P-256"), line) == b"typed-on-tty"


def test_decrypt_asks_for_the_key_password_on_the_terminal_while_stdin_is_a_pipe(
    tmp_path: Path,
) -> None:
    cert = tmp_path / "rsa.crt"
    cert.write_bytes((VECTORS / "rsa2048.crt").read_bytes())
    value = run_process("encrypt", "--cert", str(cert), cwd=tmp_path, input=b"behind-a-password")
    assert value.returncode == 0, value.stderr
    code, shown = _run_on_terminal(
        ["decrypt", "--key", str(VECTORS / "rsa2048.enc.pkcs8.key")],
        [(b"Password for the private key", b"jobscheduler")],
        stdin=value.stdout.encode(),
    )
    assert code == 0, shown
    assert b"jobscheduler" not in shown
    assert shown.rstrip().endswith(b"behind-a-password")
