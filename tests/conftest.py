"""Shared helpers: real ``manage.py worker`` subprocesses against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# Generous bound for waiting on a state: these waits are not timing assertions.
WAIT_SECONDS = float(os.environ.get("DBQ_TEST_WAIT_SECONDS", "90"))


def wait_for(
    predicate: Callable[[], object], timeout: float = WAIT_SECONDS, what: str = ""
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.05)


class WorkerProcess:
    """A ``manage.py worker`` subprocess connected to the test database."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        expect_tracebacks: bool = False,
    ):
        # A traceback in a worker's log means something went wrong that the test did not
        # look at; tests whose workers log one on purpose say so.
        self.expect_tracebacks = expect_tracebacks
        environment = dict(os.environ)
        environment["DBQ_TEST_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
        environment["PYTHONUNBUFFERED"] = "1"
        environment.update(env or {})
        self.output_path = ROOT / "var" / f"worker-{os.getpid()}-{time.monotonic_ns()}.log"
        self.output = open(self.output_path, "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", *args],
            cwd=ROOT,
            env=environment,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self.output.flush()
        return self.output_path.read_text()

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.pid} did not exit within {timeout} s:\n{self.log()[-3000:]}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if not self.output.closed:
            self.output.flush()
            self.output.close()
        return self.process.returncode

    def unexpected_tracebacks(self) -> str:
        """The log's tail when it holds a traceback the test did not declare ("" otherwise)."""
        text = self.output_path.read_text()
        if self.expect_tracebacks or "Traceback" not in text:
            return ""
        start = text.index("Traceback")
        return f"worker {self.pid} logged a traceback:\n{text[max(start - 500, 0) : start + 4000]}"


@pytest.fixture
def start_worker():
    """Start worker subprocesses; every one still running is stopped after the test.

    The test fails if a worker logged a traceback, unless it was started with
    ``expect_tracebacks=True``.
    """
    workers: list[WorkerProcess] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        expect_tracebacks: bool = False,
    ) -> WorkerProcess:
        worker = WorkerProcess(*args, env=env, expect_tracebacks=expect_tracebacks)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    problems = [text for text in (w.unexpected_tracebacks() for w in workers) if text]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def held_jobs(settings):
    """JOBS with the guarantee tests' ``held`` job, whose step waits for ``helpers.release``."""
    from tests.settings_guarantees import GUARANTEE_JOBS

    settings.JOBS = GUARANTEE_JOBS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Complete the modules' markers test by test (markers: pyproject.toml).

    A test that starts workers is a ``processes`` test whatever its module; one that
    needs neither the database nor a subprocess is a ``unit`` test.
    """
    for item in items:
        if "start_worker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.processes)
        if not item.get_closest_marker("django_db") and not item.get_closest_marker("processes"):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _subprocesses_only_in_processes_tests(request, monkeypatch):
    """A test that starts Python subprocesses must be marked ``processes`` (so -m selects right).

    Other commands pass (croniter's import runs ``file`` through ``platform``).
    """
    if request.node.get_closest_marker("processes"):
        return
    start = subprocess.Popen.__init__

    def refuse_python(self, command, *args, **kwargs):
        words = [str(word) for word in ([command] if isinstance(command, str | Path) else command)]
        if any(word == sys.executable or word.endswith(("python", "manage.py")) for word in words):
            pytest.fail(f"{request.node.nodeid} starts {words[:3]}: mark it pytest.mark.processes")
        start(self, command, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_python)
