"""The benchmark code keeps working: ``python -m benchmarks --quick`` (N = 50, one run).

Times are figures for benchmarks/README.md, never assertions: this only checks that every case
runs to the end and produces every figure with its comparisons.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run

# Figure id -> the module whose absence excuses a skip (None: never skipped).
EXPECTED: dict[str, str | None] = {
    "help": None,
    "validate-50": None,
    "plan-50": None,
    "plan-1cpu-50": None,
    "apply-local-50": None,
    "apply-joc-50": "js7certctl.keystore.joc",
    "apply-joc-high-50": "js7certctl.keystore.joc",
    "encrypt-values-rsa3072": "js7certctl.batch",
    "encrypt-values-p256": "js7certctl.batch",
    "encrypt-one": None,
}
# Figures that must come with comparisons (curl loop, openssl, JS7's tool).
COMPARED = {
    "apply-joc-50": 1,
    "apply-joc-high-50": 1,
    "encrypt-values-rsa3072": 2,
    "encrypt-values-p256": 2,
    "encrypt-one": 2,
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "figures.json"
    assert run.main(["--quick", "--json", str(out), "--workdir", str(folder)]) == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _skip_allowed(figure: dict[str, Any]) -> bool:
    module = EXPECTED[figure["id"]]
    if figure["id"] == "plan-1cpu-50":
        return shutil.which("taskset") is None
    return module is not None and importlib.util.find_spec(module) is None


def test_every_figure_is_produced(report: dict[str, Any]) -> None:
    figures = {f["id"]: f for f in report["figures"]}
    assert set(figures) == set(EXPECTED)
    for ident, figure in figures.items():
        if figure["skipped"] is not None:
            assert _skip_allowed(figure), f"{ident} skipped: {figure['skipped']}"
            continue
        assert figure["runs"] == 1, ident
        assert figure["wall_median_s"] > 0, ident
        assert figure["cpu_median_s"] > 0, ident
        assert figure["peak_rss_mb"] > 10, ident  # a Python process at least
        assert len(figure["comparisons"]) == COMPARED.get(ident, 0), ident
        for comparison in figure["comparisons"]:
            assert comparison["seconds"] > 0, ident
            assert comparison["ratio"] > 0, ident
            assert comparison["method"], ident
        if ident.startswith("encrypt-values"):
            assert figure["rate_per_s"] > 0


def test_the_report_describes_the_run(report: dict[str, Any]) -> None:
    assert report["settings"]["quick"] is True
    assert report["machine"]["cpus"] >= 1
    assert report["machine"]["python"]
    # Targets are for the full sizes only: none is judged at N = 50 but the size-free ones.
    judged = {f["id"] for f in report["figures"] for t in f["targets"]}
    assert judged <= {"help", "encrypt-one"}


def test_quick_data_is_removed_after_the_run(report: dict[str, Any], tmp_path: Path) -> None:
    leftovers = list(tmp_path.parent.glob("bench*/js7certctl-bench-*"))
    assert not leftovers
