"""``python -m benchmarks``: run the cases, print a table, write JSON.

    python -m benchmarks                      # every case, 5 runs each (about 5 minutes)
    python -m benchmarks --quick              # N = 50 everywhere, 1 run (the smoke test)
    python -m benchmarks --cases plan,validate --runs 3 --json out.json

Data is generated into a temporary folder (``--keep`` keeps it). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES, Context, Figure, Settings

QUICK_SIZE = 50


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure js7certctl as whole processes on generated data.",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"N = {QUICK_SIZE} for every case and one run"
    )
    parser.add_argument("--runs", type=int, help="timed runs per figure (default 5; quick: 1)")
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help=f"comma-separated cases to run (default all: {','.join(CASES)})",
    )
    parser.add_argument(
        "--sizes", help="manifest counts for validate and plan (default 100,1000,10000)"
    )
    parser.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--workdir", type=Path, help="generate the data here (default: a temp dir)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return {
        "cpu": cpu,
        "cpus": cpus,
        "memory": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git": _version(["git", "--version"]),
        "openssl": _version(["openssl", "version"]),
        "curl": _version(["curl", "--version"]),
    }


def _version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else None


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _ratio(value: float) -> str:
    """``12.3x faster`` (or ``2.0x slower`` below 1)."""
    if value < 1:
        return f"{1 / value:.1f}x slower" if value > 0 else "slower"
    return f"{value:,.0f}x faster" if value >= 100 else f"{value:.1f}x faster"


def table(figures: Sequence[Figure]) -> str:
    """A Markdown table: one row per figure."""
    rows = [
        "| case | N | wall (median) | CPU | peak RSS | other load | rate | target | comparison |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for figure in figures:
        n = f"{figure.n:,}" if figure.n is not None else ""
        if figure.measurement is None:
            rows.append(f"| {figure.title} | {n} | skipped: {figure.skipped} | | | | | | |")
            continue
        m = figure.measurement
        rate = f"{figure.rate:,.0f}/s" if figure.rate is not None else ""
        targets = "; ".join(
            f"{t.label} {'ok' if t.met(figure) else 'MISSED'}" for t in figure.targets
        )
        comparisons = "; ".join(
            f"{c.what}: {_seconds(c.seconds)}{'' if c.measured else ' (quoted)'} "
            f"-> {_ratio(c.ratio(m.wall))}"
            for c in figure.comparisons
        )
        others = f"{m.others:.0%}" if m.others is not None else ""
        rows.append(
            f"| {figure.title} | {n} | {_seconds(m.wall)} | {_seconds(m.cpu)} | "
            f"{m.peak_rss_mb:.0f} MB | {others} | {rate} | {targets} | {comparisons} |"
        )
    return "\n".join(rows)


def growth(figures: Sequence[Figure], prefix: str) -> dict[str, Any] | None:
    """Marginal cost per 1,000 manifests between consecutive sizes (linear: about equal)."""
    points = sorted(
        (f.n, f.wall)
        for f in figures
        if f.id.startswith(prefix) and f.id[len(prefix) :].isdigit()
        if f.n is not None and f.wall is not None
    )
    if len(points) < 2:
        return None
    slopes = [
        {
            "from": a[0],
            "to": b[0],
            "seconds_per_1000": round((b[1] - a[1]) / (b[0] - a[0]) * 1000, 4),
        }
        for a, b in itertools.pairwise(points)
    ]
    return {"points": [{"n": n, "wall_s": round(w, 4)} for n, w in points], "slopes": slopes}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for name, case in CASES.items():
            print(
                f"{name:16s} {(case.__doc__ or '').strip().splitlines()[0] if case.__doc__ else ''}"
            )
        return 0
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 64
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="js7certctl-bench-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="js7certctl-bench-"))
    settings = Settings(root=workdir)
    if args.quick:
        settings.sizes = (QUICK_SIZE,)
        settings.apply_count = settings.values_count = QUICK_SIZE
        settings.openssl_sample = settings.curl_sample = 5
        settings.runs = 1
        settings.warmup = False
        settings.quick = True
    if args.sizes:
        settings.sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.runs is not None:
        settings.runs = max(1, args.runs)
    started = time.perf_counter()
    load_before = _load()
    print(f"js7certctl benchmarks: {settings.runs} run(s) per figure, data in {workdir}")
    figures: list[Figure] = []
    try:
        context = Context(settings)
        for name in chosen:
            print(f"- {name}", flush=True)
            case_started = time.perf_counter()
            figures.extend(CASES[name](context))
            print(f"  done in {time.perf_counter() - case_started:.1f} s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print()
    print(table(figures))
    growths = {"validate": growth(figures, "validate-"), "plan": growth(figures, "plan-")}
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "runs": settings.runs,
            "warmup": settings.warmup,
            "quick": settings.quick,
            "sizes": list(settings.sizes),
            "cases": chosen,
        },
        "load_average": {"before": load_before, "after": _load()},
        "elapsed_s": round(elapsed, 1),
        "figures": [f.to_json() for f in figures],
        "growth": growths,
    }
    for name, info in growths.items():
        if info:
            slopes = ", ".join(
                f"{s['from']:,}->{s['to']:,}: {s['seconds_per_1000']:.3f} s" for s in info["slopes"]
            )
            print(f"\n{name}: marginal wall time per 1,000 manifests: {slopes}")
    print(f"\nElapsed {elapsed:.0f} s; load average {load_before} before, {_load()} after.")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"Wrote {args.json}")
    return 0
