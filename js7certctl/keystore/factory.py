"""Opens the live keystore of a target (from the config, or from a saved plan)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from js7certctl.config import Target
from js7certctl.errors import UsageError
from js7certctl.keystore.base import Keystore


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Per-run settings that are not part of the target's identity."""

    lock_timeout: float = 30.0
    insecure: bool = False
    deploy_timeout: float = 30.0
    # Where a backend reports what the user should know but is no error (e.g. a Job Resource
    # not deployed in time); the CLI passes its warning printer.
    notify: Callable[[str], None] | None = None


def connection_of(target: Target, keystore_path: Path | None, base: Path) -> dict[str, str]:
    """The non-secret settings needed to reach the target again (recorded in plan files)."""
    if target.backend == "local":
        assert keystore_path is not None
        return {"path": str(keystore_path.resolve())}
    settings: dict[str, str] = {}
    if target.url:
        settings["url"] = target.url
    for key, value in (
        ("caBundle", target.ca_bundle),
        ("clientCert", target.client_cert),
        ("clientKey", target.client_key),
    ):
        if value:
            settings[key] = str((base / value).resolve())
    return settings


def open_keystore(
    name: str, backend: str, connection: dict[str, str], options: BackendOptions
) -> Keystore:
    if backend == "local":
        from js7certctl.keystore.local import LocalKeystore

        return LocalKeystore(Path(connection["path"]), name=name, lock_timeout=options.lock_timeout)
    if backend == "joc":
        from js7certctl.keystore.joc import from_connection

        # Credentials come from the environment (JS7_USER, JS7_PASSWORD, JS7_PASSWORD_FILE),
        # never from the connection settings, which plan files record.
        return from_connection(
            name,
            connection,
            insecure=options.insecure,
            deploy_timeout=options.deploy_timeout,
            notify=options.notify,
        )
    raise UsageError(
        f"target {name!r} uses the {backend!r} backend, which this version of js7certctl "
        "cannot reach yet"
    )
