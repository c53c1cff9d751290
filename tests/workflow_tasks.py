"""Task functions of the dynamic fan-out tests (tests/*/test_fan_out.py)."""

from tests.guarantee_tasks import _wait_until, released
from tests.jobs import _record


def split(job) -> None:
    """Adds ``parts`` jobs to its own workflow, records ``split``; see the workspace's knobs.

    ``enqueue``: call ``enqueue()`` (else only ``add()``); ``fail``: raise after adding;
    ``after``: the id of a saved job every part waits for;
    ``hold``: on the first attempt, wait after adding until the test kills the worker.
    """
    flow = job.workflow
    after = []
    if job.workspace.get("after"):  # a saved job the parts wait for (a cycle, if it waits for us)
        from django_dbq.models import Job

        after = [Job.objects.get(pk=job.workspace["after"])]
    for number in range(job.workspace["parts"]):
        flow.add("part", workspace={"number": number}, after=after)
    if job.workspace.get("enqueue"):
        flow.enqueue()
    _record(job, "split")
    if job.workspace.get("fail") and job.attempts == 1:
        raise RuntimeError("the split failed after adding its parts")
    if job.workspace.get("hold") and job.attempts == 1:
        _wait_until(released, job)  # never released: the kill ends this wait


def part(job) -> None:
    _record(job, f"part {job.workspace['number']}")
