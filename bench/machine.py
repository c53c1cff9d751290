"""What the numbers were measured on: hardware, load, versions and key DB settings."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from bench.targets import MY_HOST, MY_PORT, MY_USER, OUR_PYTHON, PG_HOST, PG_PORT, PG_USER, ROOT

VERSION_SNIPPET = (
    "import importlib.metadata as m, sys\n"
    "out = [sys.version.split()[0]]\n"
    "for name in sys.argv[1:]:\n"
    "    try: out.append(m.version(name))\n"
    "    except m.PackageNotFoundError: out.append('-')\n"
    "print(' '.join(out))\n"
)


def _out(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return done.stdout.strip() if done.returncode == 0 else "unavailable"


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _pg(setting: str) -> str:
    return _out(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            PG_PORT,
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-Atc",
            f"SHOW {setting}",
        ]
    )


def _mysql(sql: str) -> str:
    return _out(["mysql", "-h", MY_HOST, "-P", MY_PORT, "-u", MY_USER, "-N", "-B", "-e", sql])


def packages(python: Path, names: list[str]) -> dict[str, str]:
    """Python and package versions as seen by the interpreter ``python``."""
    values = _out([str(python), "-c", VERSION_SNIPPET, *names]).split()
    if len(values) != len(names) + 1:
        return {"python": "unavailable"}
    return dict(zip(["python", *names], values, strict=True))


def describe(peer_pythons: dict[str, Path]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _meminfo_gib(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "git_commit": _out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "postgresql": _pg("server_version"),
        "postgresql_settings": {
            name: _pg(name) for name in ("shared_buffers", "synchronous_commit", "fsync")
        },
        "mariadb": _mysql("SELECT VERSION()"),
        "mariadb_settings": {
            name: _mysql(f"SELECT @@{name}")
            for name in ("innodb_buffer_pool_size", "innodb_flush_log_at_trx_commit")
        },
        "sqlite": sqlite3.sqlite_version,
        "pgbench": _out(["pgbench", "--version"]),
        "ours": packages(OUR_PYTHON, ["Django", "psycopg", "mysqlclient", "django-dbq"]),
    }
    peer_packages = {
        "dbq3": ["Django", "django-db-queue", "psycopg"],
        "procrastinate": ["procrastinate", "psycopg"],
    }
    for name, python in peer_pythons.items():
        info[name] = packages(python, peer_packages[name])
    return info
