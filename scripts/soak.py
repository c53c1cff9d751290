"""Soak test: producers, real ``manage.py worker`` processes, and chaos, for a few minutes.

Producers enqueue three-step ``soak`` jobs (each step records its run in the tests'
``Execution`` table); N workers run them while a chaos loop kills workers
(SIGKILL), stops them (SIGTERM) and restarts them, pauses them past their lease
(SIGSTOP, then SIGCONT) and restarts the database server. Then producing stops,
the workers drain the queue, and the run is checked: no job lost, every job
COMPLETE, every extra step run caused by a kill, pause or restart. Exit code 1 if
a check fails. Runs against a scratch database ``soak_<suffix>`` (created afresh).

    .venv/bin/python scripts/soak.py --database-url postgres://postgres@127.0.0.1:5432/test \\
        --minutes 2 --workers 3 --seed 1 [--no-restart]

See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dj_database_url  # noqa: E402
from soak_checks import check, summary  # noqa: E402
from soak_parts import Chaos, Producer, scratch_database  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "sqlite:///"),
        help="server to soak (a scratch database soak_<suffix> is made there); sqlite:///",
    )
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to produce (chaos)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--no-restart", action="store_true", help="never restart the server")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rate", type=float, default=None, help="jobs/s (default: workers x 1)")
    parser.add_argument("--lease", type=float, default=5.0, help="DBQ_LEASE_SECONDS of workers")
    parser.add_argument(
        "--suffix", default=os.environ.get("DBQ_TEST_DB_SUFFIX", ""), help="scratch db suffix"
    )
    parser.add_argument("--drain-minutes", type=float, default=5.0, help="bound on draining")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.workers < 1 or args.lease <= 0:
        parser.error("--minutes and --lease must be positive and --workers at least 1")
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = args.database_url
    vendor = dj_database_url.parse(url)["ENGINE"].rsplit(".", 1)[-1]
    name = "soak" + (args.suffix if args.suffix.startswith("_") else f"_{args.suffix}").rstrip("_")
    os.environ["DATABASE_URL"] = url
    os.environ["DBQ_TEST_DATABASE_NAME"] = scratch_database(url, vendor, name, ROOT / "var")
    os.environ["DJANGO_SETTINGS_MODULE"] = "testsettings"
    os.environ["DBQ_LEASE_SECONDS"] = str(args.lease)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    restarts = not args.no_restart and vendor in ("postgresql", "mysql")
    print(
        f"soak: {vendor} database {os.environ['DBQ_TEST_DATABASE_NAME']}, {args.workers} "
        f"workers, {args.minutes} min, seed {args.seed}, restarts {'on' if restarts else 'off'}",
        flush=True,
    )
    rng = random.Random(args.seed)
    producer = Producer(rate=args.rate or args.workers * 1.0, rng=random.Random(rng.random()))
    chaos = Chaos(
        workers=args.workers,
        lease=args.lease,
        rng=rng,
        restarts=restarts,
        duration=args.minutes * 60,
        # One directory per server and database: soaks run side by side (CI runs one on
        # PostgreSQL and one on MariaDB) never write to each other's worker logs, which
        # the clean-stop check reads.
        log_dir=ROOT / "var" / "soak" / f"{vendor}-{name}",
    )
    started = time.monotonic()
    try:
        chaos.start_workers()
        thread = threading.Thread(target=producer.run, name="producer", daemon=True)
        thread.start()
        chaos.run(until=started + args.minutes * 60)
        producer.stop()
        thread.join(60)
        drained = chaos.drain(timeout=args.drain_minutes * 60)
    finally:
        chaos.stop_all()
    elapsed = time.monotonic() - started
    results = check(producer, chaos, drained)
    print(summary(results, chaos, elapsed))
    for failure in results["failures"]:
        print(f"CHECK FAILED: {failure}")
    print("soak: OK" if not results["failures"] else "soak: FAILED", flush=True)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
