"""Where each system under test lives: its virtualenv, its driver, its database.

Peers are installed from the package registry into ``.bench-venvs/<name>`` the
first time they are needed (that folder is git-ignored). Every benchmark
database is dropped and created again by :func:`prepare`, so a run never sees
a previous run's rows or an old schema; the test suite's ``test`` database is
never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEERS = BENCH / "peers"
VENVS = ROOT / ".bench-venvs"
VAR = ROOT / "var" / "bench"
OUR_PYTHON = ROOT / ".venv" / "bin" / "python"

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
MY_HOST = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
MY_PORT = os.environ.get("BENCH_MYSQL_PORT", "3306")
MY_USER = os.environ.get("BENCH_MYSQL_USER", "root")

PEER_REQUIREMENTS = {
    "dbq3": ["django-db-queue==3.3.0", "Django>=4.2,<6", "psycopg[binary]", "dj-database-url"],
    "procrastinate": ["procrastinate", "psycopg[binary]"],
}
RESULT_PREFIX = "BENCH_RESULT "


def pg_url(db: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"


def sh(argv: list[str], timeout: float = 600, env: dict[str, str] | None = None, **kw: Any) -> str:
    """Run a command, raise with its output if it fails, return its stdout."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False, **kw
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def ensure_venv(name: str) -> Path:
    """The peer's virtualenv Python, created and installed if missing or outdated."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / ".bench-requirements.json"
    wanted = json.dumps(PEER_REQUIREMENTS[name])
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"[setup] installing {name} into {venv} ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    sh([sys.executable, "-m", "venv", str(venv)], timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    sh(pip + PEER_REQUIREMENTS[name], timeout=1200)
    marker.write_text(wanted)
    return python


def recreate_pg(db: str) -> None:
    conn = ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]
    sh(["dropdb", *conn, "--if-exists", "--force", db])
    sh(["createdb", *conn, db])


def recreate_mysql(db: str) -> None:
    sql = f"DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}` CHARACTER SET utf8mb4"
    sh(["mysql", "-h", MY_HOST, "-P", MY_PORT, "-u", MY_USER, "-e", sql])


@dataclass
class Target:
    """One system on one database."""

    system: str  # "ours" | "dbq3" | "procrastinate"
    db: str  # "postgresql" | "mariadb" | "sqlite"
    python: Path
    driver: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT

    @property
    def label(self) -> str:
        return f"{self.system}/{self.db}"

    def run(self, scenario: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run one scenario in the driver subprocess; errors come back as ``{"error": ...}``."""
        argv = [str(self.python), str(self.driver), scenario, json.dumps(params)]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"driver timed out after {timeout:.0f} s"}
        for line in reversed(done.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        tail = (done.stderr or done.stdout)[-1500:]
        return {"error": f"driver exited {done.returncode}: {tail}"}


def our_target(db: str) -> Target:
    if db == "postgresql":
        url = pg_url("dbq_bench")
    elif db == "mariadb":
        url = f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/dbq_bench"
    else:
        url = f"sqlite:///{VAR / 'dbq_bench.sqlite3'}"
    env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": f"{ROOT}:{BENCH}",
    }
    return Target("ours", db, OUR_PYTHON, BENCH / "ours.py", env)


def peer_target(system: str) -> Target:
    python = ensure_venv(system)
    env = {"PYTHONPATH": f"{PEERS}:{BENCH}"}
    if system == "dbq3":
        env["DATABASE_URL"] = pg_url("dbq3_bench")
        env["DJANGO_SETTINGS_MODULE"] = "dbq3_settings"
        driver = PEERS / "dbq3_driver.py"
    else:
        env["PROCRASTINATE_DSN"] = pg_url("procrastinate_bench")
        driver = PEERS / "procrastinate_driver.py"
    # The peers run from bench/peers, where our django_dbq package is not importable.
    return Target(system, "postgresql", python, driver, env, cwd=PEERS)


def prepare(target: Target) -> None:
    """Drop and create the target's database and install its schema."""
    env = {**os.environ, **target.env}
    if target.system == "ours":
        if target.db == "postgresql":
            recreate_pg("dbq_bench")
        elif target.db == "mariadb":
            recreate_mysql("dbq_bench")
        else:
            VAR.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                (VAR / f"dbq_bench.sqlite3{suffix}").unlink(missing_ok=True)
        sh([str(target.python), str(ROOT / "manage.py"), "migrate", "-v0"], env=env, cwd=ROOT)
    elif target.system == "dbq3":
        recreate_pg("dbq3_bench")
        manage = PEERS / "dbq3_manage.py"
        sh([str(target.python), str(manage), "migrate", "-v0"], env=env, cwd=PEERS)
    else:
        recreate_pg("procrastinate_bench")
        cli = target.python.parent / "procrastinate"
        sh([str(cli), "--app=procrastinate_app.app", "schema", "--apply"], env=env, cwd=PEERS)
