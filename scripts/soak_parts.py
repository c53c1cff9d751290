"""The parts of scripts/soak.py: the scratch database, the producer, the workers and chaos."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("one", "two", "three")  # the soak job's steps (tests/jobs.py soak_*)


def scratch_database(url: str, vendor: str, name: str, var: Path) -> str:
    """Create the scratch database afresh (dropping an old one); returns its NAME setting."""
    import dj_database_url

    settings = dj_database_url.parse(url)
    if vendor == "sqlite3":
        path = var / f"{name}.sqlite3"
        for extra in ("", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return str(path)
    if vendor == "postgresql":
        import psycopg

        with psycopg.connect(
            host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
            password=settings["PASSWORD"] or None, dbname=settings["NAME"], autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        return name
    import MySQLdb

    connection = MySQLdb.connect(
        host=settings["HOST"], port=int(settings["PORT"] or 3306), user=settings["USER"],
        password=settings["PASSWORD"] or "",
    )  # fmt: skip
    try:
        cursor = connection.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        connection.close()
    return name


def quietly_reconnect() -> None:
    from django.db import connection

    try:
        connection.close()
    except Exception:
        pass


class Producer:
    """Enqueues soak jobs at ``rate`` per second until stopped; knows every id it enqueued."""

    def __init__(self, rate: float, rng):
        self.rate = rate
        self.rng = rng
        self.created: list = []  # committed
        self.uncertain: list = []  # the insert raised: committed or not, nobody knows
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import DatabaseError

        from django_dbq.models import Job

        batch = max(1, round(self.rate / 4))
        while not self.stopped.is_set():
            jobs = [
                Job(name="soak", workspace={"work": round(self.rng.uniform(0.02, 0.25), 3)})
                for _ in range(batch)
            ]
            try:
                Job.objects.bulk_create(jobs)
                self.created += [job.pk for job in jobs]
            except DatabaseError:
                self.uncertain += [job.pk for job in jobs]
                quietly_reconnect()
                self.stopped.wait(0.5)
            self.stopped.wait(batch / self.rate)
        quietly_reconnect()

    def stop(self) -> None:
        self.stopped.set()


class Worker:
    """One ``manage.py worker`` subprocess on the scratch database."""

    def __init__(self, log_dir: Path, number: int, lease: float):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DBQ_LEASE_SECONDS": str(lease)}
        env.setdefault("DBQ_POLL_INTERVAL", "0.2")
        self.log_path = log_dir / f"worker-{number}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "worker"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.pid = self.process.pid
        self.expected_exit = False
        self.started_at = time.monotonic()

    def stopped_cleanly(self) -> bool:
        """Exit 0 after SIGTERM, or killed by it before the command started (it held nothing)."""
        code = self.process.returncode
        started = "Starting job worker" in self.log_path.read_text(errors="replace")
        return code == 0 or (code == -signal.SIGTERM and not started)

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 30) -> str:
        """SIGTERM and wait; SIGKILL if it does not exit. Returns "stop" or "kill"."""
        self.expected_exit = True
        if not self.alive():
            return "stop"
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout)
            return "stop"
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return "kill"


def held_by(pid: int) -> list:
    """Ids of the jobs a worker process holds (its worker_id is host:pid:random)."""
    from django.db import DatabaseError

    from django_dbq.models import Job

    try:
        return list(
            Job.objects.filter(state__in=("PROCESSING", "STOPPING"), worker_id__contains=f":{pid}:")
            .values_list("pk", flat=True)
        )  # fmt: skip
    except DatabaseError:
        quietly_reconnect()
        return []


class Chaos:
    """Runs the workers and, until ``until``, kills, stops, pauses them and restarts the server."""

    def __init__(self, workers: int, lease: float, rng, restarts: bool, duration: float, log_dir):
        self.size, self.lease, self.rng = workers, lease, rng
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.workers: list[Worker] = []
        self.started = 0
        self.events = collections.Counter()
        self.killed: set[int] = set()
        self.paused: set[int] = set()
        self.unexpected_exits: list[int] = []
        self.bad_stops: list[tuple[int, int]] = []  # (pid, exit status) after a SIGTERM
        self.rescue_times: list[float] = []
        self.pending: dict = {}  # job id -> (monotonic time of the interruption, pid)
        self.restarts = restarts
        self.restart_every = max(90.0, duration / 3)
        self.next_restart = time.monotonic() + duration / 3

    def start_worker(self) -> Worker:
        self.started += 1
        worker = Worker(self.log_dir, self.started, self.lease)
        self.workers.append(worker)
        return worker

    def start_workers(self) -> None:
        for _ in range(self.size):
            self.start_worker()

    def living(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    def _replace_dead(self) -> None:
        for worker in list(self.workers):
            if not worker.alive():
                if not worker.expected_exit:
                    self.unexpected_exits.append(worker.pid)
                self.workers.remove(worker)
        while len(self.living()) < self.size:
            self.start_worker()

    def _watch(self, pid: int) -> None:
        for pk in held_by(pid):
            self.pending[pk] = (time.monotonic(), pid)

    def _check_rescues(self) -> None:
        from django.db import DatabaseError

        from django_dbq.models import Job

        if not self.pending:
            return
        try:
            rows = Job.objects.filter(pk__in=list(self.pending)).values_list("pk", "worker_id")
            for pk, worker_id in rows:
                when, pid = self.pending[pk]
                if f":{pid}:" not in worker_id:  # rescued (READY, or claimed elsewhere, or done)
                    self.rescue_times.append(time.monotonic() - when)
                    del self.pending[pk]
        except DatabaseError:
            quietly_reconnect()

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_rescues()
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def kill(self, worker: Worker) -> None:
        self._watch(worker.pid)
        worker.expected_exit = True
        worker.process.kill()
        worker.process.wait(10)
        self.killed.add(worker.pid)
        self.events["kills"] += 1

    def stop(self, worker: Worker) -> None:
        outcome = worker.terminate()
        if outcome == "kill":  # it did not stop within 30 s: counted as a kill
            self.killed.add(worker.pid)
        elif not worker.stopped_cleanly():
            self.bad_stops.append((worker.pid, worker.process.returncode))
        self.events[f"{outcome}s"] += 1

    def pause(self, worker: Worker) -> None:
        self._watch(worker.pid)
        self.paused.add(worker.pid)
        worker.process.send_signal(signal.SIGSTOP)
        self.events["pauses"] += 1
        self._wait(self.lease * 1.5 + 2)  # past the lease: its jobs are rescued meanwhile
        worker.process.send_signal(signal.SIGCONT)

    def restart_server(self) -> None:
        from tests.processes.test_outages import _restart  # the suite's own restart (and wait) code

        self.events["restarts"] += 1
        try:
            _restart()
        except BaseException as error:  # pytest.fail raises an exception outside Exception
            print(f"soak: restarting the server failed: {error}", flush=True)
        quietly_reconnect()

    def run(self, until: float) -> None:
        actions = [self.kill, self.stop, self.pause]
        while time.monotonic() < until:
            self._wait(self.rng.uniform(2, 6))
            self._replace_dead()
            if self.restarts and time.monotonic() >= self.next_restart:
                self.next_restart += self.restart_every
                self.restart_server()
                continue
            # Workers that have been up a while: chaos should hit running workers, not start-ups.
            victims = [w for w in self.living() if time.monotonic() - w.started_at > 3]
            if victims:
                self.rng.choice(actions)(self.rng.choice(victims))

    def drain(self, timeout: float) -> bool:
        """Let the workers finish every job; False if some job is unfinished after ``timeout``."""
        from django.db import DatabaseError

        from django_dbq.models import Job

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._replace_dead()
            try:
                if not Job.objects.exclude(state__in=("COMPLETE", "FAILED", "CANCELLED")).exists():
                    self._check_rescues()
                    return True
            except DatabaseError:
                quietly_reconnect()
            self._wait(1)
        return False

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.alive() and worker.terminate() == "stop" and not worker.stopped_cleanly():
                self.bad_stops.append((worker.pid, worker.process.returncode))
