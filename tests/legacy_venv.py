"""The real django-db-queue 3.3.0, in a virtualenv of its own (tests/processes/test_upgrade.py,
tests/processes/test_drop_in.py).

The virtualenv is built on first use under ``var/`` (keyed by version, Python and
database driver) and kept between runs; building it needs the package index. The
old code runs in a directory of its own, where ``tests.jobs`` is a copy of
tests/legacy_jobs.py (the same steps without our imports) and nothing of ours is
importable: ``django_dbq`` there is 3.3.0's.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

VERSION = "3.3.0"
REQUIREMENTS = [f"django-db-queue=={VERSION}", "Django>=4.2,<5.3"]
DRIVERS = {"sqlite": [], "postgresql": ["psycopg[binary]>=3.1"], "mysql": ["mysqlclient>=2.2"]}

SETTINGS = """\
import json
import os

SECRET_KEY = "django-db-queue-3.3.0-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_dbq"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {"default": json.loads(os.environ["LEGACY_DATABASE"])}
JOBS = {  # 3.x's form of tests/settings_minimal.py's JOBS
    "noop": {"tasks": ["tests.jobs.noop"]},
    "chain": {"tasks": ["tests.jobs.step_one", "tests.jobs.step_two", "tests.jobs.step_three"]},
    "failing": {"tasks": ["tests.jobs.raise_error"]},
}
"""


def _build_failed(venv: Path, step: str, result: subprocess.CompletedProcess) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    pytest.fail(
        f"could not build the django-db-queue {VERSION} virtualenv ({step}); the upgrade "
        f"test needs it, and pip needs the package index:\n{result.stdout[-2000:]}\n"
        f"{result.stderr[-3000:]}",
        pytrace=False,
    )


def legacy_python(vendor: str) -> Path:
    """The Python of a virtualenv with django-db-queue 3.3.0 and ``vendor``'s driver."""
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = ROOT / "var" / f"django-db-queue-{VERSION}-{tag}-{vendor}"
    python = venv / "bin" / "python"
    ready = venv / "ready"
    venv.parent.mkdir(exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:  # two test runs never build it at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        for step, command in (
            ("venv", [sys.executable, "-m", "venv", str(venv)]),
            ("pip", [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS, *DRIVERS[vendor]]),
        ):
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                _build_failed(venv, step, result)
        ready.write_text(" ".join(REQUIREMENTS + DRIVERS[vendor]) + "\n")
    return python


class LegacyProject:
    """A project that runs django-db-queue 3.3.0 against ``database`` (Django settings)."""

    def __init__(self, directory: Path, vendor: str, database: dict):
        self.python = legacy_python(vendor)
        self.directory = directory
        (directory / "tests").mkdir(parents=True)
        (directory / "tests" / "__init__.py").write_text("")
        shutil.copy(ROOT / "tests" / "legacy_jobs.py", directory / "tests" / "jobs.py")
        shutil.copy(ROOT / "tests" / "upgrade_seed.py", directory / "tests" / "upgrade_seed.py")
        (directory / "legacy_settings.py").write_text(SETTINGS)
        self.env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(directory),
            "DJANGO_SETTINGS_MODULE": "legacy_settings",
            "LEGACY_DATABASE": json.dumps(database),
        }

    def run(self, *args: str) -> str:
        """``python *args`` in the old project; fails the test if it does not exit 0."""
        result = subprocess.run(
            [str(self.python), *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def code(self, source: str) -> str:
        return self.run("-c", f"import django; django.setup(); {source}")

    def version(self) -> str:
        return self.code(
            "from importlib.metadata import version; print(version('django-db-queue'))"
        ).strip()


def run_legacy_script(script: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``script`` under django-db-queue 3.3.0 (SQLite); it prints one JSON object.

    Its working directory and path hold no copy of this library: ``django_dbq`` is
    3.3.0's. ``tests/`` is on the path for modules that import nothing of ours.
    """
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "tests"), **(env or {})}
    result = subprocess.run(
        [str(legacy_python("sqlite")), str(script), *args],
        cwd=script.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])
