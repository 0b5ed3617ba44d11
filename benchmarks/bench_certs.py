"""Time parse_certificate_text and live_facts on 10,000 distinct certificates.

Run from the project root: ``python benchmarks/bench_certs.py``. Not part of the test run.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from js7certctl.certs import HealthPolicy, health_findings, live_facts, parse_certificate_text
from tests import certgen

COUNT = 10_000


def main() -> None:
    keys: list[certgen.SubjectKey] = [certgen.rsa_key(), certgen.ec_key(), certgen.ec_key("P-384")]
    texts = [certgen.make_cert(keys[i % len(keys)], cn=f"agent-{i:05d}") for i in range(COUNT)]
    now = datetime.now(UTC)
    policy = HealthPolicy()

    start = time.perf_counter()
    for text in texts:
        parsed, findings = parse_certificate_text(text, source="certs/x.crt")
        assert parsed is not None
        assert not findings
        health_findings(parsed.facts, policy, now)
    parse_seconds = time.perf_counter() - start

    start = time.perf_counter()
    for text in texts:
        assert live_facts(text) is not None
    live_seconds = time.perf_counter() - start

    print(f"parse + health: {COUNT} certificates in {parse_seconds:.3f} s")
    print(f"live_facts:     {COUNT} certificates in {live_seconds:.3f} s")


if __name__ == "__main__":
    main()
