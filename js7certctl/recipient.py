"""The receiver of an encrypted value: the public key of an alias or of a certificate file.

An alias's certificate comes from the manifests (working tree or a Git revision) or from the live
keystore of a target; a file may hold a certificate or a public key. Each source yields the key,
warnings for forms that JS7's own tools reject, and validity warnings (an expired certificate
still encrypts, but an Agent's key for it is probably replaced soon).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from js7certctl import certs
from js7certctl.envelope import PublicKey, describe_key, load_public_key
from js7certctl.errors import CryptoError, Js7CertCtlError, SourceError
from js7certctl.model import CertFacts
from js7certctl.secretio import read_file

if TYPE_CHECKING:
    from js7certctl.config import Target
    from js7certctl.workspace import Workspace

__all__ = ["Recipient", "from_alias", "from_file", "from_live", "from_manifests"]

_VALIDITY_RULES = (certs.RULE_CERT_EXPIRED, certs.RULE_CERT_NOT_YET_VALID)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a value is encrypted for."""

    key: PublicKey
    source: str  # e.g. "alias 'agent-x' (manifest certs/agent-x.yaml)" or "certs/agent.crt"
    facts: CertFacts | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self, now: datetime | None = None) -> str:
        """``<source>: RSA 3072, CN=..., expires ...`` (facts only, never Base64)."""
        if self.facts is not None:
            return f"{self.source}: {certs.describe(self.facts, now or datetime.now(UTC))}"
        return f"{self.source}: {describe_key(self.key)}"


def _validity_warnings(facts: CertFacts | None, now: datetime) -> list[str]:
    if facts is None:
        return []
    return [
        finding.message
        + (
            "; values encrypted for it still decrypt, but renew the certificate "
            "(and the Agent's key) soon"
            if finding.rule == certs.RULE_CERT_EXPIRED
            else ""
        )
        for finding in certs.health_findings(facts, certs.HealthPolicy(), now)
        if finding.rule in _VALIDITY_RULES
    ]


def _load(data: bytes, what: str) -> tuple[PublicKey, list[str]]:
    try:
        return load_public_key(data)
    except CryptoError as exc:
        raise CryptoError(
            f"{what} cannot be used for encryption: {exc.message}", hint=exc.hint
        ) from None


def _facts_of(data: bytes) -> CertFacts | None:
    """Facts of a PEM or DER certificate or public key; None when there are none to give."""
    if b"-----BEGIN" in data:
        return certs.live_facts(data.decode("ascii", "replace"))
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        return None
    return certs.live_facts(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def from_file(path: Path, *, now: datetime | None = None) -> Recipient:
    """A certificate or public key file (PEM; DER is accepted with a warning)."""
    data = read_file(path, "the certificate file")
    key, warnings = _load(data, str(path))
    facts = _facts_of(data)
    return Recipient(
        key=key,
        source=str(path),
        facts=facts,
        warnings=[*warnings, *_validity_warnings(facts, now or datetime.now(UTC))],
    )


def from_manifests(
    workspace: Workspace, target: Target, alias: str, *, now: datetime | None = None
) -> Recipient:
    """The certificate of ``alias`` as the manifests declare it (working tree, or at --ref)."""
    now = now or datetime.now(UTC)
    result = workspace.load(target, now=now)
    at = f" at {workspace.source.info.ref}" if workspace.source.info.ref else ""
    duplicates = [
        p
        for p in result.problems
        if p.rule == "duplicate-alias" and f"alias {alias!r}" in p.message
    ]
    if duplicates:
        raise Js7CertCtlError(
            f"alias {alias!r} is defined more than once in the manifests{at}, so its "
            "certificate is ambiguous.",
            hint="Run `js7certctl validate` and keep one definition.",
        )
    found = next((c for c in result.certs if c.alias == alias), None)
    if found is None:
        errors = len(result.errors)
        if errors:
            hint = (
                f"The manifests have {errors} error(s), which may hide it: "
                "run `js7certctl validate`."
            )
        else:
            known = [c.alias for c in result.certs]
            shown = ", ".join(known[:10]) + (
                f" and {len(known) - 10} more" if len(known) > 10 else ""
            )
            hint = f"Known aliases: {shown}." if known else "The manifests declare no alias."
        raise Js7CertCtlError(f"alias {alias!r} is not in the manifests{at}.", hint=hint)
    source = f"alias {alias!r} ({found.origin.cert_file or found.origin.path}{at})"
    key, warnings = _load(found.certificate.encode("ascii"), f"the certificate of {source}")
    return Recipient(
        key=key,
        source=source,
        facts=found.facts,
        warnings=[*warnings, *_validity_warnings(found.facts, now)],
    )


def from_live(
    workspace: Workspace, target: Target, alias: str, *, now: datetime | None = None
) -> Recipient:
    """The certificate that the live keystore of ``target`` holds for ``alias``."""
    from js7certctl.keystore.factory import BackendOptions
    from js7certctl.planning import open_target

    keystore = open_target(workspace, target, BackendOptions())
    try:
        entries = keystore.list_entries()
        location = keystore.identity.location
    finally:
        keystore.close()
    found = next((e for e in entries if e.alias == alias), None)
    if found is None:
        raise Js7CertCtlError(
            f"alias {alias!r} is not in the live keystore of target {target.name!r} ({location}).",
            hint="Check the alias with `js7certctl list`, or read it from the manifests "
            "without --from-target.",
        )
    source = f"alias {alias!r} (live in target {target.name!r})"
    # The stored text is never echoed: JOC may hold garbage or even a private key there.
    key, warnings = _load(
        found.certificate.encode("utf-8", "replace"), f"the certificate of {source}"
    )
    facts = certs.live_facts(found.certificate)
    return Recipient(
        key=key,
        source=source,
        facts=facts,
        warnings=[*warnings, *_validity_warnings(facts, now or datetime.now(UTC))],
    )


def from_alias(
    *,
    alias: str,
    repo: Path | None,
    config_file: Path | None,
    target_name: str | None,
    ref: str | None,
    live: bool,
    now: datetime | None = None,
) -> Recipient:
    """Open the workspace and find ``alias`` in the manifests or (``live``) the live keystore."""
    from js7certctl.workspace import open_workspace

    workspace = open_workspace(repo=repo, config_file=config_file, ref=ref)
    target = workspace.config.target(target_name)
    if live:
        return from_live(workspace, target, alias, now=now)
    try:
        return from_manifests(workspace, target, alias, now=now)
    except SourceError as exc:
        raise SourceError(
            f"alias {alias!r} cannot be looked up: {exc.message}", hint=exc.hint
        ) from None
