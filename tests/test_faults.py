"""Faults injected into JOC in the middle of an apply, through the CLI, against the emulator.

One saved plan of ten calls (three stores, four Agent assignments added, one removed, two
deletes) is applied while JOC misbehaves: 500s, 503s, timeouts, dropped connections, an expired
session, a 420 on one alias, and the emulator killed (and restarted from its ``--state`` file).
After each run:

- the report names exactly what was applied: on failure, ``Applied (n)`` lists the plan's first n
  steps, the failed step comes next, and ``Not applied`` lists the rest;
- the next ``plan`` explains JOC's state completely: it shows exactly the steps not applied (the
  failed one included, unless JOC carried it out and only its answer was lost);
- the next ``apply`` completes and the plan after it is empty.

The per-call timeout and the retry backoff of the JOC backend are shortened for these tests (one
narrow seam: ``JocKeystore``'s defaults, see ``fast_joc``); everything else is the real CLI.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from js7certctl.apply import Step, steps_of
from js7certctl.keystore import joc as joc_backend
from js7certctl.keystore.joc import JocKeystore
from js7certctl.model import Action
from js7certctl.planfile import read_plan
from tests import certgen
from tests.helpers import GitRepo, Run, manifest, run_cli
from tests.joc_emulator import ALL_PERMISSIONS, Account, JocEmulator
from tests.joc_emulator.fixture import joc_emulator_fixture, joc_emulator_process  # noqa: F401

PASSWORD = "Pw-faults-7c1e!"
ENV = {"JS7_USER": "ci", "JS7_PASSWORD": PASSWORD}
STORE = "encipherment/certificate/store"
DELETE = "encipherment/certificate/delete"
ADD = "encipherment/assignment/add"
REMOVE = "encipherment/assignment/remove"
KEY_PATH = "/var/sos-berlin.com/js7/agent/config/private/agent.key"
CLIENT_TIMEOUT = 0.5


@functools.cache
def cert(index: int) -> str:
    return certgen.make_cert(certgen.ec_key("P-256", variant=index), cn=f"agent-{index}", days=400)


@pytest.fixture(autouse=True)
def fast_joc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JOC backend with a 0.5 s timeout per call and a short backoff (30 s and 0.25 s by
    default), so that a timeout and its two repetitions take seconds, not minutes. The seam:
    ``from_connection`` builds ``JocKeystore`` by its module name, which is replaced by the same
    class with other defaults."""
    monkeypatch.setattr(
        joc_backend,
        "JocKeystore",
        functools.partial(JocKeystore, timeout=CLIENT_TIMEOUT, backoff=0.02),
    )


def seed(put: Callable[..., None], assign: Callable[..., None]) -> None:
    """JOC before the apply: `upd` to be updated, `del1` and `del2` to be deleted."""
    put("upd", cert(10), KEY_PATH, "/Encryption")
    assign("upd", "a1", "a2")
    put("del1", cert(11), KEY_PATH, "/Encryption")
    put("del2", cert(12), KEY_PATH, "/Encryption")


def make_repo(path: Path, url: str) -> GitRepo:
    repo = GitRepo(path)
    repo.write(
        "js7certctl.yaml",
        f'targets:\n  prod: {{backend: joc, url: "{url}"}}\ndefaultTarget: prod\n',
    )
    repo.write("new1.yaml", manifest("new1", certificate=cert(1), agents=["a1", "a2"]))
    repo.write("new2.yaml", manifest("new2", certificate=cert(2), agents=["b1"]))
    repo.write("upd.yaml", manifest("upd", certificate=cert(3), agents=["a1", "a3"]))
    repo.commit("manifests")
    return repo


@dataclass
class Setup:
    repo: GitRepo
    plan: Path
    steps: list[Step]

    def cli(self, *args: str) -> Run:
        return run_cli(*args, "--repo", str(self.repo.path), env=ENV)

    def apply(self) -> Run:
        return run_cli("apply", str(self.plan), "--deploy-timeout", "5", env=ENV)

    def remaining(self, tmp: Path) -> list[tuple[str, str, str | None]]:
        """The steps the next plan would take, in order."""
        rest = tmp / "rest.json"
        run = self.cli("plan", "--out", str(rest))
        assert run.exit_code == 0, run.stderr
        return [_key(s) for s in steps_of(read_plan(rest).changes)]


def imperative(step: Step) -> str:
    """How the report names the step that failed."""
    if step.kind == "store":
        verb = "create" if step.change.action is Action.CREATE else "update"
        return f"{verb} {step.alias}"
    if step.kind == "assign":
        return f"assign {step.alias} to Agent {step.agent}"
    if step.kind == "unassign":
        return f"remove the assignment of {step.alias} from Agent {step.agent}"
    return f"delete {step.alias}"


def _key(step: Step) -> tuple[str, str, str | None]:
    return (step.kind, step.alias, step.agent)


def make_plan(repo: GitRepo, tmp: Path) -> Setup:
    plan = tmp / "plan.json"
    run = run_cli("plan", "--repo", str(repo.path), "--out", str(plan), env=ENV)
    assert run.exit_code == 0, run.stderr
    steps = steps_of(read_plan(plan).changes)
    assert [s.kind for s in steps] == ["store"] * 3 + ["assign"] * 4 + ["unassign"] + ["delete"] * 2
    return Setup(repo, plan, steps)


@pytest.fixture
def joc(joc_emulator: JocEmulator) -> JocEmulator:
    joc_emulator.config.deploy_delay = 0.01
    joc_emulator.config.accounts["ci"] = Account(PASSWORD, ALL_PERMISSIONS)
    seed(joc_emulator.state.put_certificate, joc_emulator.state.assign)
    return joc_emulator


@pytest.fixture
def setup(joc: JocEmulator, tmp_path: Path) -> Setup:
    return make_plan(make_repo(tmp_path / "repo", joc.base_url), tmp_path)


def report_of(run: Run) -> tuple[str, list[str], list[str]]:
    """The failed step, and what the report says was and was not applied."""
    failed = re.search(r"apply stopped: (.*?) failed: ", run.stderr)
    applied = re.search(r"Applied \((\d+)\): (.*)", run.stderr)
    rest = re.search(r"Not applied \((\d+)\): (.*)", run.stderr)
    assert failed, run.stderr
    assert applied, run.stderr
    assert rest, run.stderr
    done = [] if applied.group(2) == "nothing" else applied.group(2).split("; ")
    not_done = rest.group(2).split("; ")
    assert len(done) == int(applied.group(1))
    assert len(not_done) == int(rest.group(1))
    return failed.group(1), done, not_done


def check_converges(setup: Setup, tmp: Path) -> None:
    run = setup.cli("apply", "--auto-approve", "--deploy-timeout", "5")
    assert run.exit_code == 0, run.stderr
    run = setup.cli("plan", "--detailed-exitcode")
    assert run.exit_code == 0, run.stdout + run.stderr


# ----------------------------------------------------------------------------- the fault matrix


@dataclass(frozen=True)
class FaultCase:
    name: str
    arm: Callable[[JocEmulator, pytest.MonkeyPatch], Any]
    failed_step: int | None  # index of the step reported failed; None: the apply completes
    took_effect: bool = False  # JOC carried the failed call out (only the answer was lost)
    reason: str = ""


CASES = [
    FaultCase(
        "500-on-a-store", lambda j, _: j.add_fault(STORE, status=500, nth=2), 1, reason="500"
    ),
    FaultCase("503-once-is-repeated", lambda j, _: j.add_fault(STORE, status=503, nth=2), None),
    FaultCase(
        "503-for-ever",
        lambda j, _: j.add_fault(ADD, status=503, every=True),
        3,
        reason="503",
    ),
    FaultCase(
        "420-on-one-alias",
        lambda j, _: j.add_fault(
            STORE,
            status=420,
            nth=3,
            body={"error": {"code": "JOC-420", "message": "the alias upd is locked by an edit"}},
        ),
        2,
        reason="the alias upd is locked by an edit",
    ),
    FaultCase("dropped-once-is-repeated", lambda j, _: j.add_fault(DELETE, drop=True), None),
    FaultCase(
        "dropped-for-ever",
        lambda j, _: j.add_fault(REMOVE, drop=True, every=True),
        7,
        reason="broke when asked",
    ),
    FaultCase(
        "answer-lost-then-repeated",
        lambda j, _: j.add_fault(STORE, drop=True, after=True, nth=1),
        None,
    ),
    FaultCase(
        "answers-lost-for-ever",
        lambda j, _: j.add_fault(ADD, drop=True, after=True, every=True),
        3,
        took_effect=True,
        reason="broke when asked",
    ),
    FaultCase(
        "timeout-once-is-repeated",
        lambda j, _: j.add_fault(STORE, delay=3 * CLIENT_TIMEOUT, after=True, nth=2),
        None,
    ),
    FaultCase(
        "timeouts-for-ever",
        lambda j, _: j.add_fault(DELETE, delay=3 * CLIENT_TIMEOUT, after=True, every=True),
        8,
        took_effect=True,
        reason="did not answer within",
    ),
    FaultCase(
        "session-expired",
        lambda j, mp: _on_call(mp, "add_assignment", 2, j.expire_sessions),
        None,
    ),
    FaultCase(
        "session-ends-again-after-login",
        lambda j, _: j.add_fault(STORE, status=440, every=True),
        0,
        reason="ended the session again right after a new login",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_fault_in_the_middle_of_an_apply(
    case: FaultCase,
    setup: Setup,
    joc: JocEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    described = [s.describe() for s in setup.steps]
    case.arm(joc, monkeypatch)
    run = setup.apply()
    assert "Traceback" not in run.output
    assert PASSWORD not in run.output
    if case.failed_step is None:
        assert run.exit_code == 0, run.stderr
        assert "Apply complete: 2 added, 1 changed, 2 deleted." in run.stdout
        for index, text in enumerate(described, start=1):
            assert f"[{index}/10] {text}" in run.stderr
        assert setup.remaining(tmp_path) == []
    else:
        assert run.exit_code == 1
        errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, run.stderr
        failed, done, not_done = report_of(run)
        n = case.failed_step
        assert done == described[:n]
        assert not_done == described[n:]
        assert failed == imperative(setup.steps[n])
        assert case.reason in run.stderr
        joc.clear_faults()
        expected = setup.steps[n + 1 :] if case.took_effect else setup.steps[n:]
        assert setup.remaining(tmp_path) == [_key(s) for s in expected]
    logouts = [c for c in joc.calls if c.endpoint == "authentication/logout"]
    assert logouts, "never logged out"
    assert joc.calls[-1].endpoint == "authentication/logout"  # even after the failure
    joc.clear_faults()
    check_converges(setup, tmp_path)


# ----------------------------------------------------------------------------- a killed JOC


@pytest.fixture
def joc_process(tmp_path: Path) -> Iterator[Any]:
    """The emulator as a child process with a state file, seeded before it starts."""
    from tests.joc_emulator.state import EmulatorState

    state_file = tmp_path / "joc-state.json"
    state = EmulatorState(state_file)
    seed(state.put_certificate, state.assign)
    with joc_emulator_process(
        state_file, "--user", f"ci:{PASSWORD}", "--deploy-delay", "0.01"
    ) as process:
        yield process


def _on_call(
    monkeypatch: pytest.MonkeyPatch, method: str, nth: int, action: Callable[[], object]
) -> None:
    """Run ``action`` just before the backend's ``nth`` call of ``method`` (a step of apply)."""
    original = getattr(JocKeystore, method)
    calls = {"count": 0}

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        if calls["count"] == nth:
            action()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(JocKeystore, method, wrapper)


def test_joc_killed_in_the_middle_of_an_apply(
    joc_process: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JOC dies before the first assignment (three stores done) and stays down: the apply stops
    with the report; JOC comes back from its state file, forgets the session, and the plan then
    shows exactly the rest."""
    setup = make_plan(make_repo(tmp_path / "repo", joc_process.base_url), tmp_path)
    _on_call(monkeypatch, "add_assignment", 1, joc_process.kill)
    run = setup.apply()
    assert run.exit_code == 1
    assert "Traceback" not in run.output
    failed, done, not_done = report_of(run)
    described = [s.describe() for s in setup.steps]
    assert failed == "assign new1 to Agent a1"
    assert done == described[:3]
    assert not_done == described[3:]
    assert f"cannot reach JOC at {joc_process.base_url}" in run.stderr
    joc_process.start()
    assert setup.remaining(tmp_path) == [_key(s) for s in setup.steps[3:]]
    check_converges(setup, tmp_path)


def test_joc_killed_and_restarted_between_two_calls(
    joc_process: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JOC is killed and back (from its state file, without the session) before the first
    delete: the backend logs in again, repeats the call, and the apply completes."""
    setup = make_plan(make_repo(tmp_path / "repo", joc_process.base_url), tmp_path)
    _on_call(monkeypatch, "delete", 1, joc_process.restart)
    run = setup.apply()
    assert run.exit_code == 0, run.stderr
    assert "Apply complete: 2 added, 1 changed, 2 deleted." in run.stdout
    assert setup.remaining(tmp_path) == []
    check_converges(setup, tmp_path)
