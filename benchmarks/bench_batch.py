"""Time `js7certctl encrypt --values` on 10,000 values, as a whole process (start-up included).

Run from the project root: ``python benchmarks/bench_batch.py``. Not part of the test run.
For each key (RSA-3072, EC P-256) and format (YAML, JSON) it writes a file of 10,000 string
values in 100 nested mappings, runs the CLI once in a fresh process, and checks the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import certgen

ROOT = Path(__file__).resolve().parents[1]

COUNT = 10_000
GROUPS = 100


def _values() -> dict[str, dict[str, str]]:
    per_group = COUNT // GROUPS
    return {
        f"job-{g:03d}": {f"secret_{i:03d}": f"password-{g}-{i}" for i in range(per_group)}
        for g in range(GROUPS)
    }


def _yaml_text(values: dict[str, dict[str, str]]) -> str:
    lines = ["# 10,000 secrets for the benchmark"]
    for group, items in values.items():
        lines.append(f"{group}:  # a comment")
        lines.extend(f"  {name}: {value}" for name, value in items.items())
    return "\n".join(lines) + "\n"


def _run(cert: Path, values_file: Path, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "js7certctl", "encrypt", "--cert", str(cert)]
    command += ["--values", str(values_file), "--out", str(out), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    values = _values()
    keys: dict[str, certgen.SubjectKey] = {
        "RSA-3072": certgen.rsa_key(3072),
        "EC P-256": certgen.ec_key("P-256"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "values.yaml").write_text(_yaml_text(values), encoding="utf-8")
        (folder / "values.json").write_text(json.dumps(values, indent=2), encoding="utf-8")
        for name, key in keys.items():
            cert = folder / "agent.crt"
            cert.write_text(certgen.make_cert(key, cn="bench"), encoding="ascii")
            for fmt in ("yaml", "json"):
                out = folder / f"out.{fmt}"
                seconds = _run(cert, folder / f"values.{fmt}", out)
                encrypted = out.read_text(encoding="utf-8").count("enc:")
                assert encrypted == COUNT, encrypted
                print(
                    f"{name:9} {fmt:4}: {COUNT} values in {seconds:.2f} s "
                    f"({COUNT / seconds:,.0f} values/s, whole process)"
                )


if __name__ == "__main__":
    main()
