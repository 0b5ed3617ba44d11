"""Measuring whole processes: wall time, CPU time and peak memory of each run.

A small launcher process forks the command and reaps it with :func:`os.wait4`, whose resource
usage is the command's own: ``ru_maxrss`` is the peak resident set of the command or of any
process it waited for (a forked worker, ``git``), whichever was largest; CPU time is the sum
over all of them. The wall time runs from the fork to the exit, so interpreter start and
imports are included.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
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


# Started by run_once: forks and execs the command, waits for it and writes its wall time,
# CPU time, peak RSS and exit code to the descriptor named first. The measured process must not
# be started by the benchmark process itself: Linux carries the RSS high-water mark of the
# process that execs over into ru_maxrss, and this one holds all the generated data; a small
# interpreter without site-packages does not distort the figure.
_LAUNCHER = """
import os, sys, time
report, argv = int(sys.argv[1]), sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.close(report)
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
cpu = usage.ru_utime + usage.ru_stime
os.write(report, f"{wall!r} {cpu!r} {usage.ru_maxrss} {code}".encode())
"""


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
    read_fd, write_fd = os.pipe()
    try:
        with (
            open(stdin, "rb") if stdin is not None else open(os.devnull, "rb") as stdin_file,
            open(err_path, "wb") as err,
        ):
            busy_before = _busy_seconds()
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_fd), *argv],
                cwd=cwd,
                env=dict(env),
                stdin=stdin_file,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
            )
            os.close(write_fd)
            write_fd = -1
            with os.fdopen(read_fd, "rb") as report:
                read_fd = -1
                fields = report.read().decode().split()
            proc.wait()
            busy_after = _busy_seconds()
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    if len(fields) != 4:
        raise BenchmarkError(f"the launcher of {argv[0]} failed (exit code {proc.returncode})")
    wall, cpu, maxrss, code = float(fields[0]), float(fields[1]), int(fields[2]), int(fields[3])
    if code not in expect:
        tail = err_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-8:]
        raise BenchmarkError(
            f"{' '.join(argv[:6])} ... exited {code} in {cwd}:\n    " + "\n    ".join(tail)
        )
    others = None
    if busy_before is not None and busy_after is not None and wall > 0:
        others = min(max((busy_after - busy_before - cpu) / (wall * _cpus()), 0.0), 1.0)
    return Sample(wall=wall, cpu=cpu, peak_rss_mb=maxrss / 1024, others=others)  # KiB on Linux


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
