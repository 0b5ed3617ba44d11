"""`encrypt` and `decrypt` through the CLI: JS7's vectors, the independent reference
implementation (tests/js7_reference.py), tampering, secrets never echoed, key passwords, --check.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from js7certctl import secretio
from tests import certgen
from tests import js7_reference as ref
from tests.helpers import SHARED, GitRepo, Run, manifest, run_cli

VECTORS = SHARED / "vectors"
VECTOR_DATA: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text(encoding="utf-8"))
VALUES: list[dict[str, str]] = VECTOR_DATA["values"]
FILES: list[dict[str, str]] = VECTOR_DATA["files"]
RSA_PASSWORD = "jobscheduler"  # given in vectors.json

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# ------------------------------------------------------------------------------------ helpers

EC_PARAMETERS_P256 = (
    "-----BEGIN EC PARAMETERS-----\n"
    + base64.b64encode(bytes.fromhex("06082a8648ce3d030107")).decode()
    + "\n-----END EC PARAMETERS-----\n"
)


def _vector(name: str) -> Path:
    return VECTORS / name


def _key_file(tmp_path: Path, key: PrivateKey, name: str = "agent.key") -> Path:
    path = tmp_path / name
    path.write_text(certgen.private_key_pem(key), encoding="ascii")
    return path


def _cert_file(tmp_path: Path, key: PrivateKey, name: str = "agent.crt", **kwargs: Any) -> Path:
    path = tmp_path / name
    path.write_text(certgen.make_cert(key, **kwargs), encoding="ascii")
    return path


def assert_clean(run: Run, *secrets: str) -> None:
    """No secret in stdout or stderr, and never a traceback."""
    for secret in secrets:
        assert secret not in run.stdout
        assert secret not in run.stderr
    assert "Traceback" not in run.output
    assert "Internal error" not in run.stderr


def assert_one_error(run: Run, expected: str) -> None:
    """Exit 1, nothing on stdout, one `Error:` sentence (and maybe one hint line)."""
    assert run.exit_code == 1, run.output
    assert run.stdout == ""
    assert run.stderr.startswith("Error: "), run.stderr
    assert run.stderr.count("Error:") == 1
    assert len(run.stderr.strip().splitlines()) <= 2
    assert expected in run.stderr
    assert "Traceback" not in run.stderr


def _fields(value: str) -> list[str]:
    return value.strip().removeprefix("enc:").split(" ")


# ------------------------------------------------------------------------- JS7's own vectors

# Every form of the vectors' private keys: (file name, or text to write, options).
KEY_FORMS: dict[str, Callable[[Path], list[str]]] = {
    "rsa-pkcs8": lambda tmp: ["--key", str(_vector("rsa2048.key"))],
    "rsa-pkcs1": lambda tmp: ["--key", str(_vector("rsa2048.pkcs1.key"))],
    "rsa-encrypted-password-file": lambda tmp: [
        "--key",
        str(_vector("rsa2048.enc.pkcs8.key")),
        "--key-password-file",
        str(_write(tmp / "pw.txt", RSA_PASSWORD + "\n")),
    ],
    "rsa-encrypted-password-env": lambda tmp: [
        "--key",
        str(_vector("rsa2048.enc.pkcs8.key")),
        "--key-password-env",
        "AGENT_KEY_PW",
    ],
    "ec-pkcs8": lambda tmp: ["--key", str(_vector("ecp256.key"))],
    "ec-sec1": lambda tmp: ["--key", str(_vector("ecp256.sec1.key"))],
    "ec-parameters-then-sec1": lambda tmp: [
        "--key",
        str(
            _write(
                tmp / "params.key",
                EC_PARAMETERS_P256 + _vector("ecp256.sec1.key").read_text(encoding="ascii"),
            )
        ),
    ],
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _forms(key_file: str) -> list[str]:
    prefix = "rsa" if key_file.startswith("rsa") else "ec"
    return [form for form in KEY_FORMS if form.startswith(prefix)]


VALUE_CASES = [
    pytest.param(value, form, id=f"{value['key'].split('.')[0]}-{index}-{form}")
    for index, value in enumerate(VALUES)
    for form in _forms(value["key"])
]


@pytest.mark.parametrize(("vector", "form"), VALUE_CASES)
def test_every_vector_value_decrypts_with_every_key_form(
    tmp_path: Path, vector: dict[str, str], form: str
) -> None:
    options = KEY_FORMS[form](tmp_path)
    result = run_cli(
        "decrypt", *options, input=vector["value"] + "\n", env={"AGENT_KEY_PW": RSA_PASSWORD}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == vector["plaintext"]
    assert result.stderr == ""
    assert RSA_PASSWORD not in result.output


@pytest.mark.parametrize("vector", FILES, ids=lambda v: v["key"].split(".")[0])
def test_every_vector_file_decrypts_to_the_plain_file(
    tmp_path: Path, vector: dict[str, str]
) -> None:
    out = tmp_path / "plain.txt"
    result = run_cli(
        "decrypt",
        "--key",
        str(_vector(vector["key"])),
        "--encrypted-key",
        vector["encrypted_key"],
        "--iv",
        vector["iv"],
        "--infile",
        str(_vector(vector["body_file"])),
        "--outfile",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == _vector(vector["plain_file"]).read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert result.stdout == ""


def test_a_value_file_with_surrounding_white_space_decrypts(tmp_path: Path) -> None:
    vector = VALUES[2]
    value_file = _write(tmp_path / "value.txt", f"\n  {vector['value']}  \r\n\n")
    result = run_cli(
        "decrypt", "--key", str(_vector("rsa2048.key")), "--value-file", str(value_file)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == vector["plaintext"]


def test_the_bare_three_fields_decrypt_too() -> None:
    vector = VALUES[5]
    bare = vector["value"].removeprefix("enc:")
    result = run_cli("decrypt", "--key", str(_vector("ecp256.key")), input=bare)
    assert result.exit_code == 0, result.output
    assert result.stdout == vector["plaintext"]


# ------------------------------------------------ the independent reference implementation

KEYS: dict[str, Callable[[], PrivateKey]] = {
    "rsa2048": lambda: certgen.rsa_key(2048),
    "rsa3072": lambda: certgen.rsa_key(3072),
    "rsa4096": lambda: certgen.rsa_key(4096),
    "P-256": lambda: certgen.ec_key("P-256"),
    "P-384": lambda: certgen.ec_key("P-384"),
    "P-521": lambda: certgen.ec_key("P-521"),
    "secp256k1": lambda: certgen.ec_key("secp256k1"),
}
SECRETS = {
    "empty": "",
    "one-block": "hunter2",
    "multi-block": "correct horse battery staple, " * 5,
    "non-ascii": "Grüße, 世界 🔐 €",
}


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("certs")
    return {name: _cert_file(folder, make(), f"{name}.crt") for name, make in KEYS.items()}


@pytest.mark.parametrize("secret_name", SECRETS)
@pytest.mark.parametrize("key_name", KEYS)
def test_values_the_cli_encrypts_decrypt_with_the_reference(
    cert_files: dict[str, Path], key_name: str, secret_name: str
) -> None:
    secret = SECRETS[secret_name]
    result = run_cli("encrypt", "--cert", str(cert_files[key_name]), input=secret + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("enc:")
    assert result.stdout.endswith("\n")
    assert result.stdout.count("\n") == 1
    assert ref.decrypt(KEYS[key_name](), result.stdout) == secret.encode("utf-8")
    assert_clean(result, *(s for s in [secret] if s))
    if secret_name == "non-ascii":
        assert "non-ASCII" in result.stderr
    elif secret_name == "empty":
        assert "empty" in result.stderr
    else:
        assert result.stderr == ""


@pytest.mark.parametrize("size", [0, 15, 16, 1000])
@pytest.mark.parametrize("key_name", ["rsa2048", "rsa4096", "P-256", "P-521", "secp256k1"])
def test_files_the_cli_encrypts_decrypt_with_the_reference(
    tmp_path: Path, cert_files: dict[str, Path], key_name: str, size: int
) -> None:
    data = os.urandom(size)
    infile = tmp_path / "plain.bin"
    infile.write_bytes(data)
    outfile = tmp_path / "plain.bin.enc"
    result = run_cli(
        "encrypt",
        "--cert",
        str(cert_files[key_name]),
        "--infile",
        str(infile),
        "--outfile",
        str(outfile),
    )
    assert result.exit_code == 0, result.output
    wrapped, iv, path = result.stdout.rstrip("\n").split(" ")
    assert path == str(outfile)
    body = outfile.read_text(encoding="ascii")
    assert not body.endswith("\n")
    assert len(body) % 24 == 0
    assert ref.decrypt_file(KEYS[key_name](), wrapped, iv, body) == data
    # ... and the CLI reads its own file back
    back = tmp_path / "back.bin"
    key = _key_file(tmp_path, KEYS[key_name]())
    args = ["--key", str(key), "--encrypted-key", wrapped, "--iv", iv]
    result = run_cli("decrypt", *args, "--infile", str(outfile), "--outfile", str(back))
    assert result.exit_code == 0, result.output
    assert back.read_bytes() == data


REFERENCE_CASES = [(name, False) for name in KEYS] + [
    (name, True)
    for name in KEYS
    if not name.startswith("rsa")  # a compressed EC point
]


@pytest.mark.parametrize(("key_name", "compressed"), REFERENCE_CASES)
def test_values_of_the_reference_decrypt_with_the_cli(
    tmp_path: Path, key_name: str, compressed: bool
) -> None:
    private = KEYS[key_name]()
    secret = SECRETS["non-ascii"] + key_name
    value = ref.encrypt(private.public_key(), secret.encode(), compressed=compressed)
    result = run_cli("decrypt", "--key", str(_key_file(tmp_path, private)), input=value + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == secret


def test_reference_files_decrypt_with_the_cli(tmp_path: Path) -> None:
    private = certgen.ec_key("P-384")
    data = "Zeile 1\nZeile 2 äöü\n".encode() * 20
    wrapped, iv, body = ref.encrypt_file(private.public_key(), data)
    infile = _write(tmp_path / "f.enc", body)
    out = tmp_path / "f"
    result = run_cli(
        "decrypt",
        "--key",
        str(_key_file(tmp_path, private)),
        "--encrypted-key",
        wrapped,
        "--iv",
        iv,
        "--infile",
        str(infile),
        "--outfile",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == data


# ---------------------------------------------------------------- how encrypt reads a secret

NEWLINES = [
    pytest.param("s3cret\n", False, "s3cret", id="one-newline-dropped"),
    pytest.param("s3cret\r\n", False, "s3cret", id="crlf-counts-as-one"),
    pytest.param("s3cret\n\n", False, "s3cret\n", id="only-one-dropped"),
    pytest.param("s3cret", False, "s3cret", id="no-newline"),
    pytest.param("s3cret\n", True, "s3cret\n", id="keep-newline"),
    pytest.param("", False, "", id="empty-is-the-empty-secret"),
    pytest.param("\n", False, "", id="newline-only-is-empty"),
]


@pytest.mark.parametrize(("stdin", "keep", "expected"), NEWLINES)
def test_stdin_secret_newline_handling(
    cert_files: dict[str, Path], stdin: str, keep: bool, expected: str
) -> None:
    args = ["encrypt", "--cert", str(cert_files["P-256"])]
    result = run_cli(*args, *(["--keep-newline"] if keep else []), input=stdin)
    assert result.exit_code == 0, result.output
    assert ref.decrypt(KEYS["P-256"](), result.stdout) == expected.encode()


def test_secret_from_a_file_and_from_the_environment(
    tmp_path: Path, cert_files: dict[str, Path]
) -> None:
    cert = str(cert_files["rsa2048"])
    secret_file = _write(tmp_path / "secret.txt", "from-a-file\n")
    result = run_cli("encrypt", "--cert", cert, "--secret-file", str(secret_file))
    assert result.exit_code == 0, result.output
    assert ref.decrypt(KEYS["rsa2048"](), result.stdout) == b"from-a-file"

    result = run_cli("encrypt", "--cert", cert, "--from-env", "DB_PW", env={"DB_PW": "from-env"})
    assert result.exit_code == 0, result.output
    assert ref.decrypt(KEYS["rsa2048"](), result.stdout) == b"from-env"
    assert_clean(result, "from-env")

    missing = run_cli("encrypt", "--cert", cert, "--from-env", "NOT_SET_ANYWHERE")
    assert_one_error(missing, "NOT_SET_ANYWHERE")


def test_no_prefix_prints_the_bare_three_fields(cert_files: dict[str, Path]) -> None:
    result = run_cli("encrypt", "--cert", str(cert_files["P-256"]), "--no-prefix", input="x")
    assert result.exit_code == 0, result.output
    assert not result.stdout.startswith("enc:")
    assert len(result.stdout.split(" ")) == 3
    assert ref.decrypt(KEYS["P-256"](), result.stdout) == b"x"


def test_a_secret_given_as_an_argument_is_refused_and_never_echoed(
    cert_files: dict[str, Path],
) -> None:
    result = run_cli("encrypt", "--cert", str(cert_files["P-256"]), "hunter2-in-argv")
    assert result.exit_code == 64
    assert "never from the command line" in result.stderr
    assert_clean(result, "hunter2-in-argv")


def test_a_secret_that_is_not_utf8_is_refused(cert_files: dict[str, Path]) -> None:
    result = run_cli("encrypt", "--cert", str(cert_files["P-256"]), input=b"caf\xe9-topsecret")
    assert_one_error(result, "not valid UTF-8")
    assert_clean(result, "caf", "topsecret")


def test_on_a_terminal_the_secret_is_asked_twice_hidden(
    monkeypatch: pytest.MonkeyPatch, cert_files: dict[str, Path]
) -> None:
    # The seam: no real terminal in-process (test_cli_crypto_process.py types into a real one).
    answers = iter([b"typed-secret", b"typed-secret"])
    prompts: list[str] = []

    def fake_read_hidden(prompt: str) -> bytes:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(secretio, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(secretio, "read_hidden", fake_read_hidden)
    result = run_cli("encrypt", "--cert", str(cert_files["P-256"]))
    assert result.exit_code == 0, result.output
    assert ref.decrypt(KEYS["P-256"](), result.stdout) == b"typed-secret"
    assert len(prompts) == 2
    assert_clean(result, "typed-secret")

    answers = iter([b"typed-secret", b"typo-secret"])
    result = run_cli("encrypt", "--cert", str(cert_files["P-256"]))
    assert_one_error(result, "the two entries differ")
    assert_clean(result, "typed-secret", "typo-secret")


# ---------------------------------------------------------------- certificates and warnings


def test_certificate_forms_and_their_warnings(tmp_path: Path) -> None:
    key = certgen.ec_key("P-256")
    public = _write(tmp_path / "agent.pub", certgen.public_key_pem(key))
    result = run_cli("encrypt", "--cert", str(public), input="s")
    assert result.exit_code == 0, result.output
    assert "BEGIN PUBLIC KEY" in result.stderr  # JS7's own tools reject this form for EC
    assert ref.decrypt(key, result.stdout) == b"s"

    der = tmp_path / "agent.der"
    der.write_bytes(certgen.der_cert(key))
    result = run_cli("encrypt", "--cert", str(der), input="s")
    assert result.exit_code == 0, result.output
    assert "DER" in result.stderr
    assert ref.decrypt(key, result.stdout) == b"s"


def test_an_expired_certificate_warns_but_still_encrypts(tmp_path: Path) -> None:
    key = certgen.rsa_key(2048)
    now = datetime.now(UTC)
    cert = _cert_file(
        tmp_path, key, not_before=now - timedelta(days=400), not_after=now - timedelta(days=3)
    )
    result = run_cli("encrypt", "--cert", str(cert), input="s")
    assert result.exit_code == 0, result.output
    assert "Warning: certificate expired" in result.stderr
    assert ref.decrypt(key, result.stdout) == b"s"


def test_a_private_key_or_unsupported_key_is_refused_without_echo(tmp_path: Path) -> None:
    key_file = _key_file(tmp_path, certgen.rsa_key(2048))
    result = run_cli("encrypt", "--cert", str(key_file), input="s")
    assert_one_error(result, "holds a private key")
    body_line = key_file.read_text(encoding="ascii").splitlines()[1]
    assert_clean(result, body_line)

    ed = _write(tmp_path / "ed.crt", certgen.make_cert(certgen.ed25519_key()))
    assert_one_error(run_cli("encrypt", "--cert", str(ed), input="s"), "Ed25519")
    assert_one_error(run_cli("encrypt", "--cert", str(tmp_path / "nope.crt")), "does not exist")


USAGE_ERRORS = [
    pytest.param([], id="neither-alias-nor-cert"),
    pytest.param(["--alias", "a", "--cert", "c.crt"], id="alias-and-cert"),
    pytest.param(["--cert", "c.crt", "--from-target"], id="from-target-without-alias"),
    pytest.param(["--cert", "c.crt", "--ref", "HEAD"], id="ref-without-alias"),
    pytest.param(["--alias", "a", "--from-target", "--ref", "HEAD"], id="from-target-and-ref"),
    pytest.param(["--cert", "c.crt", "--secret-file", "s", "--from-env", "V"], id="two-sources"),
    pytest.param(["--cert", "c.crt", "--infile", "f"], id="infile-without-outfile"),
    pytest.param(["--cert", "c.crt", "--out", "o"], id="out-without-values"),
    pytest.param(["--cert", "c.crt", "--values", "v.yaml", "--no-prefix"], id="values-no-prefix"),
    pytest.param(
        ["--cert", "c.crt", "--infile", "f", "--outfile", "g", "--from-env", "V"],
        id="file-mode-and-secret",
    ),
]


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_encrypt_usage_errors_exit_64(args: list[str]) -> None:
    result = run_cli("encrypt", *args, input="s")
    assert result.exit_code == 64, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------- damaged values


def _vector_value(key: str, plaintext: str) -> str:
    return next(v["value"] for v in VALUES if v["key"] == key and v["plaintext"] == plaintext)


ASCII = VALUES[2]["plaintext"]
RSA_EMPTY = _vector_value("rsa2048.key", "")
RSA_ASCII = _vector_value("rsa2048.key", ASCII)
EC_EMPTY = _vector_value("ecp256.key", "")
EC_ASCII = _vector_value("ecp256.key", ASCII)


def _alter(value: str, index: int, change: Callable[[bytes], bytes]) -> str:
    fields = _fields(value)
    raw = base64.b64decode(fields[index])
    fields[index] = base64.b64encode(change(raw)).decode()
    return "enc:" + " ".join(fields)


def _flip(data: bytes, index: int, mask: int = 0x80) -> bytes:
    changed = bytearray(data)
    changed[index] ^= mask
    return bytes(changed)


def _text_field(value: str, index: int, change: Callable[[str], str]) -> str:
    fields = _fields(value)
    fields[index] = change(fields[index])
    return "enc:" + " ".join(fields)


WRONG = "not encrypted for this key"
TAMPERED = [
    # (value, key, what the error says)
    pytest.param(_alter(RSA_ASCII, 0, lambda b: _flip(b, 100)), "rsa", WRONG, id="rsa-wrapped"),
    pytest.param(_alter(EC_ASCII, 0, lambda b: _flip(b, 70)), "ec", WRONG, id="ec-wrapped"),
    # On a one-block value the IV's last byte decides the last padding byte.
    pytest.param(_alter(RSA_EMPTY, 1, lambda b: _flip(b, 15)), "rsa", "padding", id="rsa-iv"),
    pytest.param(_alter(EC_EMPTY, 1, lambda b: _flip(b, 15)), "ec", "padding", id="ec-iv"),
    pytest.param(_alter(RSA_ASCII, 2, lambda b: _flip(b, -17)), "rsa", "padding", id="rsa-ct"),
    pytest.param(_alter(EC_ASCII, 2, lambda b: b[:-16]), "ec", "padding", id="ec-ct-block-gone"),
    pytest.param(_text_field(RSA_ASCII, 2, lambda f: f[:-4]), "rsa", "ciphertext is", id="cut"),
    pytest.param(_text_field(EC_ASCII, 1, lambda f: f[:-4]), "ec", "IV is", id="iv-cut"),
    pytest.param(EC_ASCII.replace("+", "-").replace("/", "_"), "ec", "URL-safe", id="url-safe"),
    pytest.param(
        _text_field(RSA_ASCII, 0, lambda f: f[:40] + "\n" + f[40:]),
        "rsa",
        "line break",
        id="line-break",
    ),
    pytest.param(" ".join(RSA_ASCII.split(" ")[:2]), "rsa", "three are needed", id="two-fields"),
    pytest.param("hunter2", "rsa", "three are needed", id="plain-text"),
    pytest.param(EC_ASCII, "p384", WRONG, id="wrong-curve"),
    pytest.param(RSA_ASCII, "other-rsa", WRONG, id="wrong-rsa-key"),
    pytest.param(RSA_ASCII, "ec", WRONG, id="rsa-value-ec-key"),
]


@pytest.mark.parametrize(("value", "key", "expected"), TAMPERED)
def test_tampered_values_give_one_clear_error(
    tmp_path: Path, value: str, key: str, expected: str
) -> None:
    keys = {
        "rsa": lambda: _vector("rsa2048.key"),
        "ec": lambda: _vector("ecp256.key"),
        "p384": lambda: _key_file(tmp_path, certgen.ec_key("P-384")),
        "other-rsa": lambda: _key_file(tmp_path, certgen.rsa_key(2048)),
    }
    result = run_cli("decrypt", "--key", str(keys[key]()), input=value + "\n")
    assert_one_error(result, expected)
    assert_clean(result, ASCII, "12345678")


def test_a_value_file_with_two_values_is_refused(tmp_path: Path) -> None:
    two = _write(tmp_path / "values.txt", f"{RSA_ASCII}\n{RSA_EMPTY}\n")
    result = run_cli("decrypt", "--key", str(_vector("rsa2048.key")), "--value-file", str(two))
    assert_one_error(result, "line break")
    assert_one_error(run_cli("decrypt", "--key", str(_vector("rsa2048.key"))), "no value")


def test_a_tampered_file_body_gives_one_clear_error(tmp_path: Path) -> None:
    vector = FILES[0]
    body = _vector(vector["body_file"]).read_text(encoding="ascii")
    args = ["--encrypted-key", vector["encrypted_key"], "--iv", vector["iv"]]
    for damaged, expected in [
        (body + "\n", "ends with a line break"),
        (body[:-24], "padding"),
        (body[:30], "not in JS7's format"),
    ]:
        infile = _write(tmp_path / "f.enc", damaged)
        out = tmp_path / "out.txt"
        result = run_cli(
            "decrypt", "--key", str(_vector("rsa2048.key")), *args,
            "--infile", str(infile), "--outfile", str(out),
        )  # fmt: skip
        assert_one_error(result, expected)
        assert not out.exists()  # no partial plaintext


# --------------------------------------------------------------------------- key passwords


def test_a_wrong_key_password_is_one_clear_error_without_the_password(tmp_path: Path) -> None:
    pw = _write(tmp_path / "pw", "not-the-password\n")
    key = str(_vector("rsa2048.enc.pkcs8.key"))
    result = run_cli("decrypt", "--key", key, "--key-password-file", str(pw), input=RSA_ASCII)
    assert_one_error(result, "password is wrong")
    assert_clean(result, "not-the-password", ASCII)


def test_no_password_and_no_terminal_names_both_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The seam: whether /dev/tty exists depends on how the tests are run.
    monkeypatch.setattr(secretio, "terminal_available", lambda: False)
    result = run_cli("decrypt", "--key", str(_vector("rsa2048.enc.pkcs8.key")), input=RSA_ASCII)
    assert_one_error(result, "password-protected")
    assert "--key-password-file" in result.stderr
    assert "--key-password-env" in result.stderr


def test_on_a_terminal_the_key_password_is_asked_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_read_hidden(prompt: str) -> bytes:
        prompts.append(prompt)
        return RSA_PASSWORD.encode()

    monkeypatch.setattr(secretio, "terminal_available", lambda: True)
    monkeypatch.setattr(secretio, "read_hidden", fake_read_hidden)
    result = run_cli("decrypt", "--key", str(_vector("rsa2048.enc.pkcs8.key")), input=RSA_ASCII)
    assert result.exit_code == 0, result.output
    assert result.stdout == ASCII
    assert len(prompts) == 1
    assert "rsa2048.enc.pkcs8.key" in prompts[0]


def test_decrypt_usage_errors_exit_64(tmp_path: Path) -> None:
    key = str(_vector("rsa2048.key"))
    for args in (
        [],  # no --key
        ["--key", key, "--iv", "AAAA"],
        ["--key", key, "--check", "a", "--out", "o"],
        ["--key", key, "--key-password-file", "f", "--key-password-env", "V"],
        ["--key", key, "--from-target"],
        ["--key", key, "--encrypted-key", "K", "--iv", "I", "--infile", "F", "--outfile", "G",
         "--value-file", "V"],
    ):  # fmt: skip
        result = run_cli("decrypt", *args, input=RSA_ASCII)
        assert result.exit_code == 64, (args, result.output)
        assert result.stdout == ""


def test_plaintext_to_a_file_is_mode_0600_even_over_an_open_file(tmp_path: Path) -> None:
    out = _write(tmp_path / "plain.txt", "old, readable by all\n")
    out.chmod(0o644)
    result = run_cli(
        "decrypt", "--key", str(_vector("ecp256.key")), "--out", str(out), input=EC_ASCII
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert out.read_text(encoding="utf-8") == ASCII
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["plain.txt"]  # no temporary file left


# ------------------------------------------------------------------ aliases and --check


@pytest.fixture
def alias_repo(repo: GitRepo) -> GitRepo:
    """Two aliases in a Git repository: agent-rsa (RSA-2048) and agent-ec (P-256)."""
    repo.write("certs/agent-rsa.yaml", manifest("agent-rsa", certificate_file="agent-rsa.crt"))
    repo.write("certs/agent-rsa.crt", certgen.make_cert(certgen.rsa_key(2048), cn="agent-rsa"))
    repo.write(
        "certs/agent-ec.yaml",
        manifest("agent-ec", certificate=certgen.make_cert(certgen.ec_key("P-256"), cn="agent-ec")),
    )
    repo.commit("two aliases")
    return repo  # fmt: skip


def test_encrypt_for_an_alias_of_the_manifests(alias_repo: GitRepo) -> None:
    for alias, key in (("agent-rsa", certgen.rsa_key(2048)), ("agent-ec", certgen.ec_key("P-256"))):
        result = run_cli("encrypt", "--alias", alias, "--repo", str(alias_repo.path), input="pw\n")
        assert result.exit_code == 0, result.output
        assert ref.decrypt(key, result.stdout) == b"pw"
        assert result.stderr == ""


def test_encrypt_for_an_alias_at_a_revision(alias_repo: GitRepo) -> None:
    first = alias_repo.git("rev-parse", "HEAD")
    new_key = certgen.ec_key("P-256", variant=1)
    alias_repo.write(
        "certs/agent-ec.yaml",
        manifest("agent-ec", certificate=certgen.make_cert(new_key, cn="agent-ec")),
    )
    alias_repo.commit("rotate agent-ec")  # fmt: skip
    at_first = run_cli(
        "encrypt", "--alias", "agent-ec", "--ref", first, "--repo", str(alias_repo.path), input="x"
    )
    assert at_first.exit_code == 0, at_first.output
    assert ref.decrypt(certgen.ec_key("P-256"), at_first.stdout) == b"x"
    now = run_cli("encrypt", "--alias", "agent-ec", "--repo", str(alias_repo.path), input="x")
    assert ref.decrypt(new_key, now.stdout) == b"x"


def test_encrypt_for_an_alias_of_the_live_keystore(alias_repo: GitRepo) -> None:
    path = str(alias_repo.path)
    assert run_cli("apply", "--auto-approve", "--repo", path).exit_code == 0
    # The working tree now names another certificate; the live keystore still has the old one.
    new_key = certgen.rsa_key(2048, variant=1)
    alias_repo.write("certs/agent-rsa.crt", certgen.make_cert(new_key, cn="agent-rsa"))
    live = run_cli("encrypt", "--alias", "agent-rsa", "--from-target", "--repo", path, input="x")
    assert live.exit_code == 0, live.output
    assert ref.decrypt(certgen.rsa_key(2048), live.stdout) == b"x"
    desired = run_cli("encrypt", "--alias", "agent-rsa", "--repo", path, input="x")
    assert ref.decrypt(new_key, desired.stdout) == b"x"
    missing = run_cli("encrypt", "--alias", "nobody", "--from-target", "--repo", path, input="x")
    assert_one_error(missing, "not in the live keystore")


def test_an_unknown_alias_names_the_known_ones(alias_repo: GitRepo) -> None:
    result = run_cli("encrypt", "--alias", "agent-xx", "--repo", str(alias_repo.path), input="s")
    assert result.exit_code == 1
    assert "alias 'agent-xx' is not in the manifests" in result.stderr
    assert "agent-ec, agent-rsa" in result.stderr


def test_check_says_whether_a_key_matches_an_alias(tmp_path: Path, alias_repo: GitRepo) -> None:
    key = str(_key_file(tmp_path, certgen.rsa_key(2048)))
    repo = ["--repo", str(alias_repo.path)]
    good = run_cli("decrypt", "--key", key, "--check", "agent-rsa", *repo)
    assert good.exit_code == 0, good.output
    assert "matches the certificate of alias 'agent-rsa'" in good.stdout
    bad = run_cli("decrypt", "--key", key, "--check", "agent-ec", *repo)
    assert_one_error(bad, "does not match the certificate of alias 'agent-ec'")

    assert run_cli("apply", "--auto-approve", *repo).exit_code == 0
    live = run_cli("decrypt", "--key", key, "--check", "agent-rsa", "--from-target", *repo)
    assert live.exit_code == 0, live.output
    assert "live in target 'local'" in live.stdout


# -------------------------------------------------------------------------- batch --values

VALUES_YAML = """\
# Secrets of the payments job: encrypt with `js7certctl encrypt --values`
---
database:
  user: payments        # the login
  password: "pa55: #word"
  port: 5432            # a number stays a number
  ssl: true
tokens:
  - first-token
  - 'second token'
already: enc:AAAA BBBB CCCC
nothing: ~
greeting: Grüße
"""


def _decrypt_tree(key: PrivateKey, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _decrypt_tree(key, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypt_tree(key, v) for v in value]
    if isinstance(value, str) and value.startswith("enc:") and value != "enc:AAAA BBBB CCCC":
        return ref.decrypt(key, value).decode("utf-8")
    return value


def test_values_yaml_keeps_comments_and_structure(
    tmp_path: Path, cert_files: dict[str, Path]
) -> None:
    from ruamel.yaml import YAML

    source = _write(tmp_path / "secrets.yaml", VALUES_YAML)
    out = tmp_path / "secrets.enc.yaml"
    args = ["--cert", str(cert_files["rsa3072"]), "--values", str(source), "--out", str(out)]
    result = run_cli("encrypt", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()
    for kept in [  # comments, markers and untouched lines
        *VALUES_YAML.splitlines()[:3],
        "  port: 5432            # a number stays a number",
        "  ssl: true",
        "tokens:",
        "already: enc:AAAA BBBB CCCC",
        "nothing: ~",
    ]:
        assert kept in lines
    assert any(line.startswith("  user: enc:") and line.endswith("  # the login") for line in lines)
    yaml = YAML(typ="safe")
    original = yaml.load(VALUES_YAML)
    encrypted = yaml.load(text)
    assert list(encrypted) == list(original)
    assert encrypted["database"]["port"] == 5432
    assert encrypted["database"]["password"].startswith("enc:")
    assert _decrypt_tree(KEYS["rsa3072"](), encrypted) == original
    assert "database.port, database.ssl" in result.stderr
    assert "greeting" in result.stderr  # non-ASCII
    assert "1 already encrypted" in result.stderr
    assert_clean(result, "pa55", "first-token", "second token")

    # Running it again over its own output changes nothing.
    again = run_cli("encrypt", "--cert", str(cert_files["rsa3072"]), "--values", str(out))
    assert again.exit_code == 0, again.output
    assert again.stdout == text


def test_values_json_keeps_indentation_and_order(
    tmp_path: Path, cert_files: dict[str, Path]
) -> None:
    data = {"b": {"password": "x", "list": ["y", 1, None]}, "a": "enc:K I C", "c": "Grüße"}
    source = _write(tmp_path / "values.json", json.dumps(data, indent=4, ensure_ascii=False) + "\n")
    result = run_cli("encrypt", "--cert", str(cert_files["P-384"]), "--values", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('{\n    "b": {\n        "password": "enc:')
    encrypted = json.loads(result.stdout)
    assert list(encrypted) == ["b", "a", "c"]
    assert encrypted["a"] == "enc:K I C"
    key = KEYS["P-384"]()
    assert ref.decrypt(key, encrypted["b"]["password"]) == b"x"
    assert ref.decrypt(key, encrypted["b"]["list"][0]) == b"y"
    assert encrypted["b"]["list"][1:] == [1, None]
    assert ref.decrypt(key, encrypted["c"]).decode() == "Grüße"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("dup.yaml", "user: a\npassword: top-secret-1\npassword: top-secret-2\n", "appears twice"),
        ("two.yaml", "a: top-secret-1\n---\nb: top-secret-2\n", "YAML documents"),
        ("list.yaml", "- top-secret-1\n", "mapping"),
        ("bad.yaml", 'a: "top-secret-1\n', "not valid YAML"),
        ("bad.json", '{"a": "top-secret-1",}', "not valid JSON"),
        ("dup.json", '{"a": "top-secret-1", "a": "top-secret-2"}', "appears twice"),
    ],
)
def test_unusable_values_files_never_quote_their_content(
    tmp_path: Path, cert_files: dict[str, Path], name: str, content: str, expected: str
) -> None:
    source = _write(tmp_path / name, content)
    result = run_cli("encrypt", "--cert", str(cert_files["P-256"]), "--values", str(source))
    assert_one_error(result, expected)
    assert_clean(result, "top-secret")
