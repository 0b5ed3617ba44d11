"""Small helpers shared by the renderers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from js7certctl.model import CertFacts

Style = Callable[[str, str], str]


def plain(text: str, _style: str) -> str:
    return text


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def facts_json(facts: CertFacts, now: datetime) -> dict[str, Any]:
    return {
        "kind": facts.kind,
        "subject": facts.subject,
        "issuer": facts.issuer,
        "serial": facts.serial,
        "keyType": facts.key_type,
        "keySize": facts.key_size,
        "curve": facts.curve,
        "notBefore": iso(facts.not_before),
        "notAfter": iso(facts.not_after),
        "daysLeft": facts.days_left(now),
        "signatureHash": facts.signature_hash,
        "fingerprint": facts.fingerprint,
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith(("s", "x")) else f"{count} {word}s"
