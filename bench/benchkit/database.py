"""A benchmark's own database, made afresh: dropped, created, migrated, Django set up."""

from __future__ import annotations

import os
from pathlib import Path


def fresh_database(url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``url`` (PostgreSQL, MariaDB/MySQL,
    or a SQLite file beside ``url``'s), point Django at it, migrate; its URL."""
    import dj_database_url

    database = dj_database_url.parse(url)
    engine = database["ENGINE"]
    if engine.endswith("sqlite3"):
        path = Path(database["NAME"]).with_name(f"{name}.sqlite3")
        for leftover in path.parent.glob(f"{path.name}*"):
            leftover.unlink()
        bench_url = f"sqlite:///{path}"
    elif engine.endswith("mysql"):
        import MySQLdb

        admin = MySQLdb.connect(host=database["HOST"], port=database["PORT"], user=database["USER"])
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        admin.close()
        bench_url = url.rsplit("/", 1)[0] + f"/{name}"
    else:
        import psycopg

        with psycopg.connect(
            host=database["HOST"],
            port=database["PORT"],
            user=database["USER"],
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
        bench_url = url.rsplit("/", 1)[0] + f"/{name}"
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsettings")
    os.environ["DBQ_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return bench_url
