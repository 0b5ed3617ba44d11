"""The benchmark cases: each measures js7certctl as whole processes and returns its figures."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import compare, data
from benchmarks.measure import ROOT, Measurement, child_env, js7certctl, measure

# JS7's own encrypt tool starts a JVM for every value: about 0.24 s each on this machine
# (../shared/notes.md). Quoted, not measured.
JS7_TOOL_SECONDS_PER_VALUE = 0.24
JOC_USER = "bench"
JOC_PASSWORD = "bench-secret"  # noqa: S105 (the emulator's throwaway account)


@dataclass(slots=True)
class Target:
    """A bound a figure must keep: ``metric`` ("wall", "peak", "rate", or "ratio" to the
    ``comparison``-th comparison) against ``bound``."""

    metric: str
    bound: float
    label: str
    comparison: int = 0

    def met(self, figure: Figure) -> bool | None:
        value = figure.metric(self.metric, self.comparison)
        if value is None:
            return None
        if self.metric in ("rate", "ratio"):
            return value >= self.bound
        return value < self.bound


@dataclass(slots=True)
class Comparison:
    """What a user would compare the figure with, and how many times faster js7certctl is."""

    what: str
    seconds: float
    method: str
    measured: bool = True  # False: a quoted reference figure

    def ratio(self, ours: float) -> float:
        return self.seconds / ours if ours > 0 else float("inf")


@dataclass(slots=True)
class Figure:
    id: str
    title: str
    n: int | None = None
    measurement: Measurement | None = None
    items: int | None = None  # values per run, for a rate
    targets: list[Target] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: str | None = None
    note: str | None = None

    @property
    def wall(self) -> float | None:
        return self.measurement.wall if self.measurement else None

    @property
    def rate(self) -> float | None:
        if self.items is None or not self.wall:
            return None
        return self.items / self.wall

    def metric(self, name: str, comparison: int = 0) -> float | None:
        if self.measurement is None:
            return None
        if name == "wall":
            return self.measurement.wall
        if name == "peak":
            return self.measurement.peak_rss_mb
        if name == "rate":
            return self.rate
        if name == "ratio":
            if comparison >= len(self.comparisons):
                return None
            return self.comparisons[comparison].ratio(self.measurement.wall)
        raise ValueError(name)

    def to_json(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "id": self.id,
            "title": self.title,
            "n": self.n,
            "skipped": self.skipped,
            "note": self.note,
            "runs": len(m.samples) if m else 0,
            "wall_median_s": round(m.wall, 4) if m else None,
            "wall_s": [round(s.wall, 4) for s in m.samples] if m else [],
            "cpu_median_s": round(m.cpu, 4) if m else None,
            "peak_rss_mb": round(m.peak_rss_mb, 1) if m else None,
            "other_load": round(m.others, 2) if m and m.others is not None else None,
            "rate_per_s": round(self.rate, 1) if self.rate is not None else None,
            "targets": [
                {"metric": t.metric, "bound": t.bound, "label": t.label, "met": t.met(self)}
                for t in self.targets
            ],
            "comparisons": [
                {
                    "what": c.what,
                    "seconds": round(c.seconds, 3),
                    "method": c.method,
                    "measured": c.measured,
                    "ratio": round(c.ratio(m.wall), 1) if m else None,
                }
                for c in self.comparisons
            ],
        }


@dataclass(slots=True)
class Settings:
    root: Path  # the temporary folder all data goes into
    runs: int = 5
    warmup: bool = True
    sizes: tuple[int, ...] = (100, 1_000, 10_000)
    apply_count: int = 1_000
    values_count: int = 10_000
    openssl_sample: int = 200
    curl_sample: int = 200
    quick: bool = False
    log: Callable[[str], None] = print


class Context:
    """Shared state of one benchmark run: settings, the certificate factory, the repositories."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.factory = data.CertFactory()
        self.env = child_env()
        self._repos: dict[int, data.Repo] = {}

    def repo(self, count: int) -> data.Repo:
        """A repository of ``count`` manifests with a live keystore of which 10 % differ."""
        if count not in self._repos:
            started = time.perf_counter()
            repo = data.make_repo(self.settings.root / f"repo-{count}", self.factory, count)
            differing = data.make_keystore(repo, self.factory)
            self.settings.log(
                f"  made a repository of {count:,} manifests and a keystore with {differing:,} "
                f"of {count:,} entries different ({time.perf_counter() - started:.1f} s)"
            )
            self._repos[count] = repo
        return self._repos[count]

    def measure(self, argv: Sequence[str], *, cwd: Path, **kwargs: Any) -> Measurement:
        options: dict[str, Any] = {"env": self.env, **kwargs}
        return measure(
            argv, runs=self.settings.runs, cwd=cwd, warmup=self.settings.warmup, **options
        )


def _target(condition: bool, target: Target) -> list[Target]:
    return [target] if condition else []


# ----------------------------------------------------------------------------- cases


def case_help(ctx: Context) -> list[Figure]:
    """`js7certctl --help`: interpreter start and the CLI's imports."""
    m = ctx.measure(js7certctl("--help"), cwd=ctx.settings.root)
    return [
        Figure(
            "help",
            "js7certctl --help (start-up)",
            measurement=m,
            targets=[Target("wall", 0.3, "< 0.3 s")],
        )
    ]


def case_validate(ctx: Context) -> list[Figure]:
    """validate of the working tree at each size."""
    figures = []
    for count in ctx.settings.sizes:
        repo = ctx.repo(count)
        m = ctx.measure(js7certctl("validate"), cwd=repo.path)
        figures.append(
            Figure(
                f"validate-{count}",
                "validate (working tree)",
                n=count,
                measurement=m,
                targets=_target(count == 10_000, Target("wall", 2.0, "< 2 s")),
            )
        )
    return figures


def case_plan(ctx: Context) -> list[Figure]:
    """plan --ref HEAD against the embedded keystore (10 % of it differs) at each size."""
    figures = []
    for count in ctx.settings.sizes:
        repo = ctx.repo(count)
        m = ctx.measure(js7certctl("plan", "--ref", "HEAD"), cwd=repo.path)
        targets = _target(count == 1_000, Target("wall", 0.6, "< 0.6 s"))
        targets += _target(count == 10_000, Target("wall", 2.0, "< 2 s"))
        targets += _target(count == 10_000, Target("peak", 300.0, "< 300 MB"))
        figures.append(
            Figure(
                f"plan-{count}",
                "plan --ref HEAD (embedded keystore, 10 % differ)",
                n=count,
                measurement=m,
                targets=targets,
            )
        )
    return figures


def case_plan_one_cpu(ctx: Context) -> list[Figure]:
    """The largest plan again, pinned to one CPU: what a single core gives (no forked loader)."""
    count = max(ctx.settings.sizes)
    title = "plan --ref HEAD on one CPU (taskset -c 0)"
    taskset = shutil.which("taskset")
    if taskset is None:
        return [Figure(f"plan-1cpu-{count}", title, n=count, skipped="no taskset command here")]
    repo = ctx.repo(count)
    m = ctx.measure([taskset, "-c", "0", *js7certctl("plan", "--ref", "HEAD")], cwd=repo.path)
    return [Figure(f"plan-1cpu-{count}", title, n=count, measurement=m)]


def _reset_local(repo: data.Repo) -> None:
    folder = repo.keystore.parent
    if folder.exists():
        shutil.rmtree(folder)


def case_apply_local(ctx: Context) -> list[Figure]:
    """apply of a saved plan of N creates to an empty embedded keystore."""
    count = ctx.settings.apply_count
    repo = data.make_repo(ctx.settings.root / "apply-local", ctx.factory, count, agents=0)
    plan = repo.path / "plan.json"
    _reset_local(repo)
    ctx.measure(js7certctl("plan", "--ref", "HEAD", "--out", str(plan)), cwd=repo.path)
    m = ctx.measure(
        js7certctl("apply", str(plan), "--quiet"),
        cwd=repo.path,
        before_each=lambda: _reset_local(repo),
    )
    return [
        Figure(
            f"apply-local-{count}",
            f"apply PLANFILE: {count:,} creates, embedded keystore",
            n=count,
            measurement=m,
            note="one SQLite transaction (synchronous=FULL) per store, as the store is designed",
        )
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def joc_emulator(port: int, env: dict[str, str], level: str = "MEDIUM") -> Iterator[str]:
    """``python -m tests.joc_emulator`` on ``port`` with a fresh, empty state; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.joc_emulator",
            "--port",
            str(port),
            "--user",
            f"{JOC_USER}:{JOC_PASSWORD}",
            "--security-level",
            level,
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the JOC emulator did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _joc_available() -> str | None:
    """None when the JOC backend and the emulator are there, else why not."""
    import importlib.util

    if importlib.util.find_spec("js7certctl.keystore.joc") is None:
        return "the JOC backend (js7certctl/keystore/joc.py) has not landed yet"
    if importlib.util.find_spec("tests.joc_emulator") is None:
        return "the JOC emulator (tests/joc_emulator) is missing"
    return None


def case_apply_joc(ctx: Context) -> list[Figure]:
    """apply of N creates against the JOC emulator (a separate process), and the curl loop."""
    count = ctx.settings.apply_count
    levels = {
        "MEDIUM": (
            f"apply-joc-{count}",
            "JOC emulator, security level MEDIUM (waits for deployment)",
        ),
        "HIGH": (f"apply-joc-high-{count}", "JOC emulator, security level HIGH (nothing deployed)"),
    }
    reason = _joc_available()
    if reason is not None:
        return [
            Figure(ident, f"apply PLANFILE: {count:,} creates, {what}", n=count, skipped=reason)
            for ident, what in levels.values()
        ]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    target = f'  joc: {{backend: joc, url: "{url}"}}\n'
    repo = data.make_repo(
        ctx.settings.root / "apply-joc", ctx.factory, count, agents=0, extra_targets=target
    )
    env = {**ctx.env, "JS7_USER": JOC_USER, "JS7_PASSWORD": JOC_PASSWORD}
    plan = repo.path / "plan-joc.json"
    with joc_emulator(port, env):
        measure(
            js7certctl("plan", "--ref", "HEAD", "--target", "joc", "--out", str(plan)),
            runs=1,
            warmup=False,
            cwd=repo.path,
            env=env,
        )
    pems = ctx.factory.certs(count)
    bodies = [
        {
            "certAlias": data.alias_of(index),
            "certificate": pems[index],
            "jobResourceFolder": data.JOB_RESOURCE_FOLDER,
            "privateKeyPath": data.KEY_PATH.format(alias=data.alias_of(index)),
            "auditLog": {"comment": "curl loop"},
        }
        for index in range(min(ctx.settings.curl_sample, count))
    ]
    with joc_emulator(port, env):
        estimate = compare.curl_store_loop(
            ctx.settings.root / "curl", url=url, bodies=bodies, count=count, env=env
        )
    comparison = Comparison(f"curl loop, {count:,} stores", estimate.seconds, estimate.method)
    figures = []
    for level, (ident, what) in levels.items():
        m = _measure_with_fresh_emulator(ctx, plan, repo.path, port, env, level)
        figures.append(
            Figure(
                ident,
                f"apply PLANFILE: {count:,} creates, {what}",
                n=count,
                measurement=m,
                targets=[
                    *_target(count == 1_000 and level == "MEDIUM", Target("wall", 5.0, "< 5 s")),
                    *_target(
                        count == 1_000 and level == "MEDIUM",
                        Target("ratio", 10.0, ">= 10x the curl loop"),
                    ),
                ],
                comparisons=[comparison],
            )
        )
    return figures


def _measure_with_fresh_emulator(
    ctx: Context, plan: Path, cwd: Path, port: int, env: dict[str, str], level: str
) -> Measurement:
    """Every run gets a fresh emulator (an empty JOC) on the same port; starting it is untimed."""
    running: list[Any] = []

    def stop() -> None:
        while running:
            running.pop().__exit__(None, None, None)

    def fresh() -> None:
        stop()
        emulator = joc_emulator(port, env, level)
        emulator.__enter__()
        running.append(emulator)

    try:
        return ctx.measure(
            js7certctl("apply", str(plan), "--quiet"), cwd=cwd, env=env, before_each=fresh
        )
    finally:
        stop()


def _encrypt_values_available() -> str | None:
    import importlib.util

    if importlib.util.find_spec("js7certctl.batch") is None:
        return "`encrypt --values` (js7certctl/batch.py) has not landed yet"
    return None


_CURVE_NAMES = {"rsa3072": "RSA-3072", "p256": "EC P-256"}


def _recipient(ctx: Context, kind: str) -> tuple[Path, bytes]:
    folder = ctx.settings.root / "encrypt"
    folder.mkdir(exist_ok=True)
    cert, key = ctx.factory.recipient(kind)
    path = folder / f"{kind}.crt"
    path.write_text(cert, encoding="utf-8")
    return path, key


def case_encrypt_values(ctx: Context) -> list[Figure]:
    """encrypt --values of N secrets (RSA-3072, EC P-256), and openssl one process each."""
    count = ctx.settings.values_count
    reason = _encrypt_values_available()
    figures = []
    folder = ctx.settings.root / "encrypt"
    folder.mkdir(exist_ok=True)
    values = folder / "values.yaml"
    secrets = data.make_values(values, count)
    for kind, rate in (("rsa3072", 8_000.0), ("p256", 6_000.0)):
        title = f"encrypt --values: {count:,} values, {_CURVE_NAMES[kind]}"
        if reason is not None:
            figures.append(Figure(f"encrypt-values-{kind}", title, n=count, skipped=reason))
            continue
        cert, key = _recipient(ctx, kind)
        out = folder / f"values-{kind}.enc.yaml"
        m = ctx.measure(
            js7certctl("encrypt", "--cert", str(cert), "--values", str(values), "--out", str(out)),
            cwd=folder,
        )
        _check_batch_output(out, secrets, key)
        sample = secrets[: min(ctx.settings.openssl_sample, count)]
        estimate, made = compare.openssl_encrypt(
            folder / "openssl", kind=kind, cert=cert, secrets=sample, count=count, env=ctx.env
        )
        compare.check_js7_values(made[:20], sample[:20], key)
        figures.append(
            Figure(
                f"encrypt-values-{kind}",
                title,
                n=count,
                measurement=m,
                items=count,
                targets=[
                    *_target(count == 10_000, Target("rate", rate, f">= {rate:,.0f} values/s")),
                    *_target(
                        count == 10_000,
                        Target("ratio", 1_000.0, ">= 1,000x JS7's tool", comparison=1),
                    ),
                ],
                comparisons=[
                    Comparison(
                        f"openssl, one process per value, {count:,} values",
                        estimate.seconds,
                        estimate.method,
                    ),
                    _js7_tool(count),
                ],
            )
        )
    return figures


def _js7_tool(count: int) -> Comparison:
    return Comparison(
        f"JS7's encrypt tool, {count:,} value(s)",
        JS7_TOOL_SECONDS_PER_VALUE * count,
        f"quoted: {JS7_TOOL_SECONDS_PER_VALUE} s per value (a JVM start each), not measured",
        measured=False,
    )


def _check_batch_output(out: Path, secrets: Sequence[str], key: bytes) -> None:
    """The first and last values of js7certctl's output decrypt to their secrets."""
    encrypted = [
        line.split(": ", 1)[1].strip().strip('"')
        for line in out.read_text(encoding="utf-8").splitlines()
        if line.startswith("  secret_")
    ]
    if len(encrypted) != len(secrets):
        raise AssertionError(f"{out} holds {len(encrypted)} values, not {len(secrets)}")
    picks = sorted({0, 1, len(secrets) - 1})
    compare.check_js7_values([encrypted[i] for i in picks], [secrets[i] for i in picks], key)


def case_encrypt_one(ctx: Context) -> list[Figure]:
    """encrypt of one value (RSA-3072) as a whole process, and openssl for one value."""
    folder = ctx.settings.root / "encrypt"
    folder.mkdir(exist_ok=True)
    cert, key = _recipient(ctx, "rsa3072")
    secret = folder / "secret.txt"
    secret.write_text("S3cr3t-value!\n", encoding="utf-8")
    m = ctx.measure(js7certctl("encrypt", "--cert", str(cert)), cwd=folder, stdin=secret)
    estimate, made = compare.openssl_encrypt(
        folder / "openssl-one",
        kind="rsa3072",
        cert=cert,
        secrets=["S3cr3t-value!"] * min(10, ctx.settings.openssl_sample),
        count=1,
        env=ctx.env,
    )
    compare.check_js7_values(made[:1], ["S3cr3t-value!"], key)
    return [
        Figure(
            "encrypt-one",
            "encrypt: one value, RSA-3072, as a whole process",
            n=1,
            measurement=m,
            targets=[Target("wall", 0.3, "< 0.3 s")],
            comparisons=[
                Comparison(
                    "openssl, one value", estimate.seconds, "bash + openssl (mean of 10 runs)"
                ),
                _js7_tool(1),
            ],
        )
    ]


CASES: dict[str, Callable[[Context], list[Figure]]] = {
    "help": case_help,
    "validate": case_validate,
    "plan": case_plan,
    "plan-1cpu": case_plan_one_cpu,
    "apply-local": case_apply_local,
    "apply-joc": case_apply_joc,
    "encrypt-values": case_encrypt_values,
    "encrypt-one": case_encrypt_one,
}
