"""django-db-queue 3.3.0 itself, from the package registry, in a virtualenv of its own.

Built once under ``var/`` (never committed) and reused; tests that compare our
behaviour with the real 3.3.0 run code in it through :func:`run_legacy`.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = "3.3.0"
VENV = ROOT / "var" / f"django-db-queue-{VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
REQUIREMENTS = [f"django-db-queue=={VERSION}", "Django>=4.2,<6"]


def legacy_python() -> Path:
    """The interpreter of a virtualenv with django-db-queue 3.3.0 (built on first use)."""
    python = VENV / "bin" / "python"
    ready = VENV / ".ready"
    VENV.parent.mkdir(exist_ok=True)
    with open(VENV.parent / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if ready.exists():
            return python
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            + REQUIREMENTS,
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if result.returncode:
                pytest.fail(
                    f"could not build the django-db-queue {VERSION} virtualenv "
                    f"({' '.join(step)}):\n{result.stdout}\n{result.stderr}"
                )
        ready.write_text(" ".join(REQUIREMENTS))
    return python


def run_legacy(script: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``script`` under django-db-queue 3.3.0; it prints one JSON object, returned here.

    Its working directory and path hold no copy of this library: ``django_dbq`` is 3.3.0's.
    """
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["PYTHONPATH"] = str(ROOT / "tests")
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    environment.update(env or {})
    result = subprocess.run(
        [str(legacy_python()), str(script), *args],
        cwd=script.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])
