"""Measuring whole processes: wall time, CPU time and peak memory of each run.

A run is started with :class:`subprocess.Popen` and reaped with :func:`os.wait4`, whose resource
usage is the child's own: ``ru_maxrss`` is the peak resident set of the child or of any process
it waited for (a forked worker, ``git``), whichever was largest; CPU time is the sum over all of
them. The wall time runs from just before the start to just after the exit, so interpreter start
and imports are included.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Where the package under test lives: the folder holding js7certctl/ and benchmarks/.
ROOT = Path(__file__).resolve().parents[1]


class BenchmarkError(Exception):
    """A measured command failed; the message holds the end of its stderr."""


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and the children it waited for
    peak_rss_mb: float  # MiB
    # Share of the machine's CPU time that other processes used meanwhile (0..1; None where
    # /proc/stat is missing): a figure taken while the machine was busy elsewhere is slower.
    others: float | None = None


@dataclass(slots=True)
class Measurement:
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        """Median wall time."""
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_rss_mb(self) -> float:
        """The highest peak over the runs."""
        return max(s.peak_rss_mb for s in self.samples)

    @property
    def others(self) -> float | None:
        """Median share of the CPU time that other processes used during the runs."""
        values = [s.others for s in self.samples if s.others is not None]
        return statistics.median(values) if values else None


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (Linux), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of measured processes: the package importable, no colours, no CI.

    ``PYTHONDONTWRITEBYTECODE`` is removed so that, as after ``pip install``, modules are loaded
    from compiled bytecode (the first, untimed run writes it).
    """
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "NO_COLOR"):
        env.pop(name, None)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    env["NO_COLOR"] = "1"
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


def js7certctl(*args: str) -> list[str]:
    """The command line of ``python -m js7certctl ARGS`` with this interpreter."""
    return [sys.executable, "-m", "js7certctl", *args]


def run_once(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: Path | None = None,
    expect: Sequence[int] = (0,),
    log: Path | None = None,
) -> Sample:
    """Run ``argv`` once; stdout is discarded, stderr kept (in ``log``) for error messages."""
    err_path = log or (cwd / ".bench-stderr.txt")
    with (
        open(stdin, "rb") if stdin is not None else open(os.devnull, "rb") as stdin_file,
        open(err_path, "wb") as err,
    ):
        busy_before = _busy_seconds()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=stdin_file,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        busy_after = _busy_seconds()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in expect:
        tail = err_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-8:]
        raise BenchmarkError(
            f"{' '.join(argv[:6])} ... exited {code} in {cwd}:\n    " + "\n    ".join(tail)
        )
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if busy_before is not None and busy_after is not None and wall > 0:
        others = min(max((busy_after - busy_before - cpu) / (wall * _cpus()), 0.0), 1.0)
    return Sample(
        wall=wall,
        cpu=cpu,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        others=others,
    )


def measure(
    argv: Sequence[str],
    *,
    runs: int,
    cwd: Path,
    env: Mapping[str, str],
    warmup: bool = True,
    before_each: Callable[[], None] | None = None,
    stdin: Path | None = None,
    expect: Sequence[int] = (0,),
) -> Measurement:
    """``runs`` timed runs (after one untimed warm-up run unless ``warmup`` is false);
    ``before_each`` prepares every run (untimed), e.g. a fresh keystore."""
    result = Measurement()
    for index in range(runs + (1 if warmup else 0)):
        if before_each is not None:
            before_each()
        sample = run_once(argv, cwd=cwd, env=env, stdin=stdin, expect=expect)
        if warmup and index == 0:
            continue
        result.samples.append(sample)
    return result


def time_shell(
    script: Path, *, cwd: Path, env: Mapping[str, str], args: Sequence[str] = ()
) -> float:
    """Wall time of ``bash SCRIPT ARGS`` (used for the comparison loops)."""
    return run_once(["bash", str(script), *args], cwd=cwd, env=env).wall
