"""Queue rate limits (``DBQ_QUEUES`` "rate") held by a fleet of real workers, in every mode.

The jobs record their own start (tests.jobs.overlap_step), stamped by the database
server's clock. No test asserts on elapsed time; every wait is bounded.
"""

import datetime
import signal

import pytest

from django_dbq.models import Job
from tests.conftest import wait_for
from tests.models import Execution
from tests.processes.test_queue_limits import all_complete, settings_with

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def starts_of(queue_name: str) -> list:
    """The recorded starts of ``queue_name``'s jobs, in order (the server's clock)."""
    pks = Job.objects.filter(queue_name=queue_name).values_list("pk", flat=True)
    jobs = {str(pk) for pk in pks}
    records = Execution.objects.filter(step="start").values_list("job_id", "at")
    return sorted(at for job_id, at in records if job_id in jobs)


def gaps(queue_name: str) -> list[float]:
    """The seconds between consecutive starts (for the failure messages)."""
    starts = starts_of(queue_name)
    return [round((b - a).total_seconds(), 3) for a, b in zip(starts, starts[1:], strict=False)]


def most_starts_within(queue_name: str, seconds: float) -> int:
    """The most recorded starts of ``queue_name``'s jobs within any span of ``seconds``."""
    starts = starts_of(queue_name)
    span = datetime.timedelta(seconds=seconds)
    most = 0
    for first, at in enumerate(starts):
        within = sum(1 for later in starts[first:] if later - at < span)
        most = max(most, within)
    return most


def stop(*workers) -> None:
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait() == 0, worker.log()[-3000:]


def test_a_fleet_of_workers_in_every_mode_starts_at_most_the_rate(start_worker, held_jobs):
    rate, period = 5, 1.0
    env = settings_with({"rated": {"rate": f"{rate}/s"}})
    jobs = [
        Job.objects.create(name="overlapping", queue_name="rated", workspace={"sleep": 0.05})
        for _ in range(20)
    ]
    workers = [
        start_worker("rated", env=env),
        start_worker("rated", env=env),
        start_worker("rated", "--concurrency", "3", "--mode", "threads", env=env),
    ]
    wait_for(lambda: all_complete(jobs), what="the rated queue's jobs to complete")
    assert Execution.objects.filter(step="start").count() == len(jobs)
    # The claims are spaced on the server's clock, period/rate apart, but a job's record
    # follows its claim by a moment that varies: on the loaded CI host, records came up
    # to 0.4 s late, so six records once fell within 0.6 s. What records can show for
    # sure: the 20 starts took at least 19 spacings (less half a second of lag), where
    # twice the rate would have taken half that; and no burst (without the rate, the 5
    # workers' slots would start the 20 jobs within a few tenths of a second).
    spacing = period / rate
    starts = starts_of("rated")
    assert (starts[-1] - starts[0]).total_seconds() >= (len(jobs) - 1) * spacing - 0.5, gaps(
        "rated"
    )
    assert most_starts_within("rated", period - 2 * spacing) <= rate + 1, gaps("rated")
    assert most_starts_within("rated", spacing / 2) <= 3, gaps("rated")
    assert len(set(Execution.objects.filter(step="start").values_list("pid", flat=True))) > 1
    stop(*workers)


def test_a_held_back_queue_starts_one_job_per_spacing_and_the_others_run(start_worker, held_jobs):
    env = settings_with({"rated": {"rate": "1/h"}})
    rated = [Job.objects.create(name="overlapping", queue_name="rated") for _ in range(5)]
    workers = [
        start_worker("rated", "free", env=env),
        start_worker("rated", "free", env=env),
        start_worker("rated", "free", "--concurrency", "3", "--mode", "threads", env=env),
    ]
    free = [Job.objects.create(name="noop", queue_name="free") for _ in range(60)]
    wait_for(lambda: all_complete(free), what="the free queue's jobs, beside the rated one")
    wait_for(
        lambda: Job.objects.filter(pk__in=[job.pk for job in rated], state="COMPLETE").exists(),
        what="the rated queue's first job",
    )
    # One start an hour, over every worker and thread: the other four wait.
    assert Job.objects.filter(queue_name="rated", attempts__gte=1).count() == 1
    assert Job.objects.filter(queue_name="rated", state="NEW").count() == 4
    # The workers are stopped by the fixture: one may still be starting (a SIGTERM
    # before its handlers are set ends it with -15, which says nothing of the rate).
    assert all(worker.process.poll() is None for worker in workers)
