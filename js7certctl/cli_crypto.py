"""Commands for secrets and keys: `encrypt`, `decrypt`, `keys new` (registered on the app).

Secrets (values to encrypt, key passwords) are read from stdin, a file, an environment variable or
a hidden prompt on the terminal, never from a command-line argument, and never appear in output or
errors. Heavy imports stay inside the command functions so that `js7certctl --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from js7certctl.cli import (
    ConfigOpt,
    DebugOpt,
    NoColorOpt,
    QuietOpt,
    RefOpt,
    RepoOpt,
    TargetOpt,
    Ui,
    app,
    make_ui,
)
from js7certctl.errors import UsageError

if TYPE_CHECKING:
    from js7certctl.envelope import Encryptor, PrivateKey
    from js7certctl.recipient import Recipient

__all__ = ["app", "decrypt", "encrypt", "keys_app", "keys_new"]

# ----------------------------------------------------------------------------- shared options

AliasOpt = Annotated[
    str | None,
    typer.Option(
        "--alias",
        "-a",
        metavar="ALIAS",
        help="The certificate of this alias: from the manifests (at --ref if given), or from the "
        "live keystore of --target with --from-target.",
    ),
]
FromTargetOpt = Annotated[
    bool,
    typer.Option(
        "--from-target",
        help="Take the alias's certificate from the live keystore of --target instead of the "
        "manifests.",
    ),
]


def shown_path(path: Path) -> str:
    """A path as the user should read it: relative to the current folder when inside it."""
    relative = os.path.relpath(os.path.abspath(path))
    return str(path) if relative.startswith("..") else relative


def _check_alias_options(
    alias: str | None, from_target: bool, ref: str | None, target: str | None, what: str
) -> None:
    if alias is None:
        used = [
            name
            for name, given in (
                ("--from-target", from_target),
                ("--ref", ref is not None),
                ("--target", target is not None),
            )
            if given
        ]
        if used:
            raise UsageError(
                f"{', '.join(used)} only choose{'s' if len(used) == 1 else ''} where {what} is "
                "looked up; they need an alias."
            )
    elif from_target and ref is not None:
        raise UsageError(
            "--from-target reads the live keystore and --ref the manifests at a revision; "
            "give one of them."
        )


def _alias_recipient(
    alias: str,
    *,
    from_target: bool,
    repo: Path | None,
    config: Path | None,
    target: str | None,
    ref: str | None,
) -> Recipient:
    from js7certctl import recipient

    return recipient.from_alias(
        alias=alias,
        repo=repo,
        config_file=config,
        target_name=target,
        ref=ref,
        live=from_target,
    )


# ----------------------------------------------------------------------------- encrypt

_NON_ASCII = (
    "the secret contains non-ASCII characters: it is encrypted as UTF-8, and an Agent decrypts "
    "it correctly only when its Java runs with UTF-8 (the default since Java 18; otherwise set "
    "-Dfile.encoding=UTF-8)."
)


def _read_secret(
    secret_file: Path | None, from_env: str | None, keep_newline: bool, for_whom: str
) -> bytes:
    from js7certctl import secretio

    if secret_file is not None:
        data = secretio.read_file(secret_file, "the secret file")
    elif from_env is not None:
        data = secretio.read_env(from_env, "the secret")
    elif secretio.stdin_is_terminal():
        # Asked twice: a typo in a hidden secret would only show when the job fails.
        first = secretio.read_hidden(f"Secret to encrypt for {for_whom} (input hidden): ")
        second = secretio.read_hidden("Enter the secret again: ")
        import hmac

        if not hmac.compare_digest(first, second):
            raise secretio.SecretInputError("the two entries differ; nothing was encrypted.")
        return first
    elif sys.stdin is None:
        raise secretio.SecretInputError(
            "there is no stdin to read the secret from.",
            hint="Use --secret-file FILE or --from-env VAR.",
        )
    else:
        data = sys.stdin.buffer.read()
    return data if keep_newline else secretio.drop_one_newline(data)


def _check_secret_text(secret: bytes, ui: Ui) -> None:
    from js7certctl.secretio import SecretInputError

    try:
        text = secret.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretInputError(
            "the secret is not valid UTF-8 text, and JS7 values hold text.",
            hint="Convert it to UTF-8; for binary data use file mode (--infile F --outfile G).",
        ) from None
    if not text:
        ui.warn("the secret is empty; the value decrypts to an empty string.")
    elif not text.isascii():
        ui.warn(_NON_ASCII)


def _encrypt_mode(
    *,
    values: Path | None,
    out: Path | None,
    infile: Path | None,
    outfile: Path | None,
    secret_file: Path | None,
    from_env: str | None,
    keep_newline: bool,
    no_prefix: bool,
) -> str:
    secret_opts = [
        name
        for name, given in (
            ("--secret-file", secret_file is not None),
            ("--from-env", from_env is not None),
            ("--keep-newline", keep_newline),
        )
        if given
    ]
    if values is not None:
        clash = [*secret_opts, *(["--no-prefix"] if no_prefix else [])]
        clash += [n for n, v in (("--infile", infile), ("--outfile", outfile)) if v is not None]
        if clash:
            raise UsageError(
                f"--values encrypts the values of a file; it cannot be combined with "
                f"{', '.join(clash)}."
            )
        return "values"
    if out is not None:
        raise UsageError(
            "--out goes with --values; a single value is printed on stdout "
            "(redirect it, or use --infile F --outfile G for a file)."
        )
    if infile is not None or outfile is not None:
        if infile is None or outfile is None:
            raise UsageError("file mode needs both --infile FILE and --outfile FILE.")
        clash = [*secret_opts, *(["--no-prefix"] if no_prefix else [])]
        if clash:
            raise UsageError(
                f"file mode encrypts --infile; it cannot be combined with {', '.join(clash)}."
            )
        return "file"
    if secret_file is not None and from_env is not None:
        raise UsageError("give the secret one way: --secret-file FILE or --from-env VAR.")
    return "value"


@app.command(
    # Stray arguments are caught by the command itself, so that none is ever echoed.
    context_settings={"allow_extra_args": True},
    epilog="Examples: js7certctl encrypt --alias agent-001 < secret.txt; "
    "js7certctl encrypt --cert agent.crt --from-env DB_PASSWORD; "
    "js7certctl encrypt --alias agent-001 --values secrets.yaml --out job-resource.yaml",
)
def encrypt(
    ctx: typer.Context,
    alias: AliasOpt = None,
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            metavar="FILE",
            help="Encrypt for this certificate (or public key) file, PEM (DER with a warning).",
        ),
    ] = None,
    from_target: FromTargetOpt = False,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", metavar="FILE", help="Read the secret from FILE."),
    ] = None,
    from_env: Annotated[
        str | None,
        typer.Option(
            "--from-env", metavar="VAR", help="Read the secret from the environment variable VAR."
        ),
    ] = None,
    keep_newline: Annotated[
        bool,
        typer.Option(
            "--keep-newline",
            help="Keep the secret's trailing line break (by default exactly one is dropped).",
        ),
    ] = False,
    no_prefix: Annotated[
        bool,
        typer.Option(
            "--no-prefix",
            help="Print the bare three fields, as JS7's own tool does, without `enc:`.",
        ),
    ] = False,
    infile: Annotated[
        Path | None,
        typer.Option("--infile", metavar="FILE", help="File mode: encrypt this file."),
    ] = None,
    outfile: Annotated[
        Path | None,
        typer.Option(
            "--outfile",
            metavar="FILE",
            help="File mode: write the encrypted file here; the line printed holds the wrapped "
            "key and IV that decryption needs.",
        ),
    ] = None,
    values: Annotated[
        Path | None,
        typer.Option(
            "--values",
            metavar="FILE",
            help="Batch mode: encrypt every string value of this YAML or JSON mapping "
            "(values starting with `enc:` are left alone).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Batch mode: write the result here (mode 0600) instead of stdout.",
        ),
    ] = None,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Encrypt a secret for an Agent's certificate, in JS7's format (`enc:...`).

    The secret is read from stdin (a hidden prompt, asked twice, on a terminal), --secret-file
    or --from-env, never from an argument; one trailing line break is dropped. Prints `enc:...`.
    """
    from js7certctl import envelope, recipient

    ui = make_ui(quiet, no_color, debug)
    if ctx.args:
        # Never echo it: the user may have typed the secret here.
        raise UsageError(
            "encrypt takes no arguments: the secret is read from stdin, --secret-file FILE or "
            "--from-env VAR, never from the command line, where other users can see it.",
            hint="The argument given was not used (and is not shown here).",
        )
    mode = _encrypt_mode(
        values=values,
        out=out,
        infile=infile,
        outfile=outfile,
        secret_file=secret_file,
        from_env=from_env,
        keep_newline=keep_newline,
        no_prefix=no_prefix,
    )
    if (alias is None) == (cert is None):
        raise UsageError(
            "say whom to encrypt for: give exactly one of --alias ALIAS or --cert FILE."
        )
    _check_alias_options(alias, from_target, ref, target, "the certificate")
    if alias is not None:
        receiver = _alias_recipient(
            alias, from_target=from_target, repo=repo, config=config, target=target, ref=ref
        )
    else:
        assert cert is not None
        receiver = recipient.from_file(cert)
    for warning in receiver.warnings:
        ui.warn(warning)
    encryptor = envelope.Encryptor(receiver.key)

    if mode == "values":
        assert values is not None
        _encrypt_values(encryptor, values, out, ui, receiver)
    elif mode == "file":
        assert infile is not None
        assert outfile is not None
        from js7certctl import secretio

        data = secretio.read_file(infile, "the input file")
        wrapped, iv, body = encryptor.encrypt_file(data)
        secretio.write_file_atomic(outfile, body.encode("ascii"), what="the output file")
        ui.result(f"{wrapped} {iv} {outfile}\n")
    else:
        secret = _read_secret(secret_file, from_env, keep_newline, receiver.source)
        _check_secret_text(secret, ui)
        ui.result(encryptor.encrypt(secret).to_string(prefix=not no_prefix) + "\n")


def _paths(paths: list[str], limit: int = 10) -> str:
    shown = ", ".join(p or "(top)" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _encrypt_values(
    encryptor: Encryptor, values: Path, out: Path | None, ui: Ui, receiver: Recipient
) -> None:
    from js7certctl import batch, secretio

    encrypt_one = encryptor.encrypt

    def encrypt(text: str) -> str:
        return encrypt_one(text.encode("utf-8")).to_string()

    data = secretio.read_file(values, "the values file")
    result = batch.encrypt_document(
        data, batch.detect_format(values, data), encrypt, source=str(values)
    )
    if out is not None:
        secretio.write_private_file(out, result.text.encode("utf-8"), what="the output file")
    else:
        ui.result(result.text)
    if result.kept:
        ui.warn(
            f"left {len(result.kept)} number, boolean or date value(s) unencrypted (JS7 decrypts "
            f"only strings; quote a value to encrypt it): {_paths(result.kept)}."
        )
    if result.non_ascii:
        ui.warn(
            f"{len(result.non_ascii)} value(s) contain non-ASCII characters "
            f"({_paths(result.non_ascii)}): they are encrypted as UTF-8, and an Agent decrypts "
            "them correctly only when its Java runs with UTF-8."
        )
    already = f"; {len(result.already)} already encrypted, left alone" if result.already else ""
    where = f" to {out} (mode 0600)" if out is not None else ""
    ui.info(
        f"Encrypted {len(result.encrypted)} value(s) for {receiver.source}{already}; "
        f"wrote the result{where or ' to stdout'}."
    )


# ----------------------------------------------------------------------------- decrypt


def load_private_key_file(
    path: Path, password_file: Path | None, password_env: str | None
) -> PrivateKey:
    from js7certctl import envelope, secretio
    from js7certctl.errors import CryptoError

    data = secretio.read_file(path, "the private key file")
    password: bytes | None = None
    if password_file is not None:
        password = secretio.drop_one_newline(
            secretio.read_file(password_file, "the key password file")
        )
    elif password_env is not None:
        password = secretio.read_env(password_env, "the key password")

    def load(secret: bytes | None) -> PrivateKey:
        try:
            return envelope.load_private_key(data, secret)
        except envelope.KeyPasswordRequiredError:
            raise
        except CryptoError as exc:
            raise CryptoError(
                f"cannot use the private key {path}: {exc.message}", hint=exc.hint
            ) from None

    try:
        return load(password)
    except envelope.KeyPasswordRequiredError:
        if password is not None:
            raise
        if not secretio.terminal_available():
            raise envelope.KeyPasswordRequiredError(
                f"the private key {path} is password-protected and there is no terminal to ask "
                "for its password.",
                hint="Give it with --key-password-file FILE or --key-password-env VAR.",
            ) from None
    return load(secretio.read_hidden(f"Password for the private key {path}: "))


def _read_value(value_file: Path | None, ui: Ui) -> str:
    from js7certctl import secretio
    from js7certctl.envelope import NotAJs7ValueError

    if value_file is not None:
        raw = secretio.read_file(value_file, "the value file")
    elif secretio.stdin_is_terminal():
        ui.info("Paste the encrypted value (enc:...) and press Enter:")
        raw = sys.stdin.buffer.readline()
    elif sys.stdin is None:
        raw = b""
    else:
        raw = sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise NotAJs7ValueError(
            "the input is not text, so it is not a JS7 encrypted value."
        ) from None
    if not text:
        source = f"the value file {value_file}" if value_file is not None else "stdin"
        raise NotAJs7ValueError(
            f"no value was given ({source} is empty).",
            hint="Pipe the value in (`js7certctl decrypt --key KEY < value.txt`) or use "
            "--value-file FILE.",
        )
    if "\n" in text or "\r" in text:
        raise NotAJs7ValueError(
            "the input holds a line break inside the value; give exactly one value on one line "
            "(a JS7 value never holds a line break)."
        )
    return text


def _write_plaintext(data: bytes) -> None:
    sys.stdout.flush()
    stream = sys.stdout.buffer
    stream.write(data)
    if sys.stdout.isatty() and not data.endswith(b"\n"):
        stream.write(b"\n")  # keep the shell prompt off the secret's line
    stream.flush()


@app.command(
    epilog="Examples: js7certctl decrypt --key agent.key < value.txt; "
    "js7certctl decrypt --key agent.key --check agent-001; "
    "js7certctl decrypt --key agent.key --encrypted-key K --iv IV --infile F.enc --outfile F",
)
def decrypt(
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="FILE",
            help="The private key: PKCS#8, PKCS#1 or SEC1 PEM (or DER), maybe password-protected.",
        ),
    ],
    key_password_file: Annotated[
        Path | None,
        typer.Option(
            "--key-password-file", metavar="FILE", help="Read the key's password from FILE."
        ),
    ] = None,
    key_password_env: Annotated[
        str | None,
        typer.Option(
            "--key-password-env",
            metavar="VAR",
            help="Read the key's password from the environment variable VAR.",
        ),
    ] = None,
    value_file: Annotated[
        Path | None,
        typer.Option(
            "--value-file", metavar="FILE", help="Read the value from FILE instead of stdin."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", metavar="FILE", help="Write the plaintext to FILE (mode 0600)."
        ),
    ] = None,
    encrypted_key: Annotated[
        str | None,
        typer.Option(
            "--encrypted-key",
            metavar="BASE64",
            help="File mode: the wrapped key printed by encrypt.",
        ),
    ] = None,
    iv: Annotated[
        str | None,
        typer.Option("--iv", metavar="BASE64", help="File mode: the IV printed by encrypt."),
    ] = None,
    infile: Annotated[
        Path | None,
        typer.Option("--infile", metavar="FILE", help="File mode: the encrypted file."),
    ] = None,
    outfile: Annotated[
        Path | None,
        typer.Option(
            "--outfile", metavar="FILE", help="File mode: write the decrypted file (mode 0600)."
        ),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            metavar="ALIAS",
            help="Instead of decrypting, verify that the key belongs to ALIAS's certificate "
            "(exit 0 if it does, 1 if not).",
        ),
    ] = None,
    from_target: FromTargetOpt = False,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    ref: RefOpt = None,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Decrypt a JS7 value (`enc:...`) or file with a private key.

    The value is read from stdin or --value-file; the plaintext goes to stdout or --out. The key
    password comes from --key-password-file, --key-password-env or a hidden prompt.
    """
    from js7certctl import envelope, secretio
    from js7certctl.errors import CryptoError

    ui = make_ui(quiet, no_color, debug)
    file_options = {
        "--encrypted-key": encrypted_key,
        "--iv": iv,
        "--infile": infile,
        "--outfile": outfile,
    }
    given = [name for name, value in file_options.items() if value is not None]
    value_options = [n for n, v in (("--value-file", value_file), ("--out", out)) if v is not None]
    if given and len(given) < len(file_options):
        missing = [name for name in file_options if name not in given]
        raise UsageError(
            f"file mode needs --encrypted-key, --iv, --infile and --outfile together; "
            f"missing: {', '.join(missing)}."
        )
    if check is not None and (given or value_options):
        raise UsageError(
            f"--check only verifies the key; it cannot be combined with "
            f"{', '.join([*value_options, *given])}."
        )
    if given and value_options:
        raise UsageError(f"file mode cannot be combined with {', '.join(value_options)}.")
    if key_password_file is not None and key_password_env is not None:
        raise UsageError(
            "give the key password one way: --key-password-file FILE or --key-password-env VAR."
        )
    _check_alias_options(check, from_target, ref, target, "the certificate for --check")

    if check is not None:
        receiver = _alias_recipient(
            check, from_target=from_target, repo=repo, config=config, target=target, ref=ref
        )
        for warning in receiver.warnings:
            ui.warn(warning)
        private = load_private_key_file(key, key_password_file, key_password_env)
        if not envelope.key_matches(private, receiver.key):
            raise CryptoError(
                f"the private key {key} does not match the certificate of {receiver.source}.",
                hint="Values encrypted for this alias cannot be decrypted with this key: check "
                "that it is the Agent's key for this certificate.",
            )
        ui.result(f"The private key {key} matches the certificate of {receiver.describe()}.\n")
        return

    private = load_private_key_file(key, key_password_file, key_password_env)
    if given:
        assert encrypted_key is not None
        assert iv is not None
        assert infile is not None
        assert outfile is not None
        body = secretio.read_file(infile, "the encrypted file")
        plain = envelope.decrypt_file(private, encrypted_key, iv, body)
        secretio.write_private_file(outfile, plain, what="the output file")
        ui.info(f"Decrypted {infile} to {outfile} ({len(plain)} bytes, mode 0600).")
        return
    value = envelope.parse_value(_read_value(value_file, ui))
    plain = envelope.decrypt_value(private, value)
    if out is not None:
        secretio.write_private_file(out, plain, what="the output file")
        ui.info(f"Wrote the plaintext to {out} (mode 0600).")
    else:
        _write_plaintext(plain)


# ----------------------------------------------------------------------------- keys new

keys_app = typer.Typer(
    name="keys",
    help="Agent key pairs: make a key and its certificate, keeping the key out of Git.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(keys_app, name="keys")


class KeyType(StrEnum):
    rsa2048 = "rsa:2048"
    rsa3072 = "rsa:3072"
    rsa4096 = "rsa:4096"
    p256 = "ec:P-256"
    p384 = "ec:P-384"
    secp256k1 = "ec:secp256k1"


@keys_app.command(
    "new",
    epilog="Example: js7certctl keys new agent-payments --key-out ~/agent-keys/agent-payments.key "
    "--agent-key-path /var/sos-berlin.com/js7/agent/config/private/agent-payments.key",
)
def keys_new(
    alias: Annotated[str, typer.Argument(metavar="ALIAS", help="The new certificate alias.")],
    key_out: Annotated[
        Path,
        typer.Option(
            "--key-out",
            metavar="PATH",
            help="Where to write the private key (PKCS#8, unencrypted, mode 0600); outside the "
            "Git work tree unless Git ignores the path. Never overwritten.",
        ),
    ],
    key_type: Annotated[
        KeyType, typer.Option("--type", help="The key type.", case_sensitive=False)
    ] = KeyType.rsa3072,
    days: Annotated[
        int, typer.Option("--days", min=1, max=36500, help="Validity of the certificate.")
    ] = 730,
    agent_key_path: Annotated[
        str | None,
        typer.Option(
            "--agent-key-path",
            metavar="PATH",
            help="Where the Agents will find the key (the manifest's privateKeyPath).",
        ),
    ] = None,
    csr: Annotated[
        Path | None,
        typer.Option(
            "--csr",
            metavar="FILE",
            help="Write a certificate signing request for a CA instead of a self-signed "
            "certificate (no certificate or manifest is written then).",
        ),
    ] = None,
    manifest_dir: Annotated[
        Path | None,
        typer.Option(
            "--manifest-dir",
            metavar="DIR",
            help="Where to write the certificate and manifest (default: the first folder of the "
            "config's `manifests`).",
        ),
    ] = None,
    repo: RepoOpt = None,
    config: ConfigOpt = None,
    target: TargetOpt = None,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Make an Agent key pair, its self-signed certificate (or a CSR) and the manifest.

    The certificate (<ALIAS>.crt) and manifest (<ALIAS>.yaml) are written into the repository,
    ready to commit; the private key goes to --key-out, never into Git. Nothing is overwritten.
    """
    from datetime import UTC, datetime

    from js7certctl import agentkeys, certs, keygen, secretio
    from js7certctl.errors import Js7CertCtlError, SourceError
    from js7certctl.manifest import alias_problem, is_absolute_key_path
    from js7certctl.workspace import open_workspace

    ui = make_ui(quiet, no_color, debug)
    problem = alias_problem(alias)
    if problem:
        raise UsageError(f"{problem}.", hint="Choose an alias that follows JS7's naming rules.")
    workspace = open_workspace(repo=repo, config_file=config)
    chosen = workspace.config.target(target)
    base = workspace.base_path
    entries = workspace.config.manifests_for(chosen)
    try:
        loaded = workspace.load(chosen)
    except SourceError:  # no manifests yet
        existing = None
    else:
        existing = next((c for c in loaded.certs if c.alias == alias), None)
    if existing is not None:
        raise Js7CertCtlError(
            f"alias {alias!r} already has a manifest ({existing.origin.path}); nothing was "
            "written.",
            hint="Choose another alias; to give it a new key, edit that manifest's certificate.",
        )

    if manifest_dir is not None:
        folder = Path(os.path.abspath(manifest_dir))
    elif csr is None:
        folder = agentkeys.pick_manifest_dir(base, entries)
    else:
        try:
            folder = agentkeys.pick_manifest_dir(base, entries)
        except UsageError:
            folder = base
    cert_path = folder / f"{alias}.crt"
    manifest_path = folder / f"{alias}.yaml"
    if csr is None:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"the manifest folder {shown_path(folder)} is not a folder.")
        for path in (cert_path, manifest_path, folder / f"{alias}.yml"):
            if path.exists() or path.is_symlink():
                raise Js7CertCtlError(
                    f"{shown_path(path)} already exists; js7certctl never overwrites it, and "
                    "nothing was written.",
                    hint="Choose another alias, or move the file away.",
                )
        if not agentkeys.covered(folder, base, entries):
            ui.warn(
                f"{shown_path(folder)} is not among the config's manifests ({', '.join(entries)}), "
                "so validate and plan will not see the new manifest."
            )
    elif csr.exists() or csr.is_symlink():
        raise Js7CertCtlError(
            f"--csr {csr} already exists; js7certctl never overwrites it, and nothing was written."
        )
    key_path = agentkeys.check_key_location(key_out)
    if csr is not None and Path(os.path.abspath(csr)) == key_path:
        raise UsageError("--csr and --key-out name the same file.")
    if agent_key_path is None:
        ui.warn(
            "no --agent-key-path: the manifest gets no privateKeyPath, so the Agents cannot find "
            "their key; add it to the manifest before applying."
        )
    elif not is_absolute_key_path(agent_key_path):
        ui.warn(
            f"--agent-key-path {agent_key_path!r} is relative; Agents need an absolute path "
            "(or C:\\... on Windows)."
        )

    now = datetime.now(UTC)
    private = keygen.generate_key(key_type.value)
    if csr is None:
        folder.mkdir(parents=True, exist_ok=True)
    secretio.write_new_file(
        key_path, keygen.private_key_pem(private), mode=0o600, what="the private key file"
    )
    ui.result(f"Wrote the private key  {shown_path(key_path)} (PKCS#8, unencrypted, mode 0600)\n")
    manifest = agentkeys.manifest_text(
        alias, cert_path.name, agent_key_path, generated=now.date().isoformat()
    )
    try:
        if csr is not None:
            request = keygen.certificate_signing_request(private, alias)
            secretio.write_new_file(csr, request.encode("ascii"), what="the CSR file")
            ui.result(f"Wrote the CSR          {shown_path(csr)}\n")
        else:
            pem = keygen.self_signed_certificate(private, alias, days, now)
            secretio.write_new_file(cert_path, pem.encode("ascii"), what="the certificate file")
            facts = certs.live_facts(pem)
            about = f" ({certs.describe(facts, now)})" if facts is not None else ""
            ui.result(f"Wrote the certificate  {shown_path(cert_path)}{about}\n")
            secretio.write_new_file(
                manifest_path, manifest.encode("utf-8"), what="the manifest file"
            )
            ui.result(f"Wrote the manifest     {shown_path(manifest_path)}\n")
    except Js7CertCtlError as exc:
        raise Js7CertCtlError(
            exc.message,
            hint=f"The private key was already written to {shown_path(key_path)}; delete it before "
            "trying again.",
        ) from None

    agent_path = agent_key_path or "the manifest's privateKeyPath"
    steps = [
        f"Install the private key on every Agent that decrypts for {alias}, at {agent_path}, "
        "owned by the Agent's user with mode 0600; then delete this copy or keep it in a vault.",
    ]
    if csr is not None:
        steps[:0] = [
            f"Have your CA sign {shown_path(csr)} and save the certificate (PEM) as "
            f"{shown_path(cert_path)}.",
            f"Save this manifest as {shown_path(manifest_path)}:\n\n"
            + "".join(f"       {line}\n" for line in manifest.splitlines()),
        ]
        files = f"{shown_path(cert_path)} {shown_path(manifest_path)}"
    else:
        files = f"{shown_path(cert_path)} {shown_path(manifest_path)}"
    steps += [
        f'Commit: git add {files} && git commit -m "Add encryption certificate {alias}"',
        "Review and apply: js7certctl plan, then js7certctl apply.",
        f"Encrypt secrets for it: js7certctl encrypt --alias {alias} < secret.txt",
    ]
    ui.info("Next steps:")
    for number, step in enumerate(steps, 1):
        ui.info(f"  {number}. {step}")
