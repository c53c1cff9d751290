"""User code that misbehaves (hooks, steps, signal receivers): the job ends in a definite state,
and the worker goes on. Run by an in-process worker."""

import pytest

from django_dbq.models import Job

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def explode(job):
    raise RuntimeError("user code exploded")


def explode_in_failure_hook(job, error):
    raise RuntimeError("failure hook exploded")


def exit_task(job):
    raise SystemExit(3)


def interrupt_task(job):
    raise KeyboardInterrupt


def leave_unserialisable_workspace(job):
    job.workspace["handle"] = object()


USER_CODE_JOBS = {
    "noop": ["tests.jobs.noop"],
    "chain": ["tests.jobs.step_one", "tests.jobs.step_two", "tests.jobs.step_three"],
    "pre_hook_raises": {
        "tasks": ["tests.jobs.noop"],
        "pre_task_hook": "tests.databases.test_execution.explode",
    },
    "post_hook_raises": {
        "tasks": ["tests.jobs.step_one"],
        "post_task_hook": "tests.databases.test_execution.explode",
    },
    "failure_hook_raises": {
        "tasks": ["tests.jobs.raise_error"],
        "failure_hook": "tests.databases.test_execution.explode_in_failure_hook",
    },
    "creation_hook_raises": {
        "tasks": ["tests.jobs.noop"],
        "creation_hook": "tests.databases.test_execution.explode",
    },
    "missing_function": ["tests.databases.test_execution.no_such_function"],
    "missing_module": ["tests.no_such_module.task"],
    "unserialisable": [
        "tests.jobs.step_one",
        "tests.databases.test_execution.leave_unserialisable_workspace",
        "tests.jobs.step_two",
    ],
    "exits": ["tests.databases.test_execution.exit_task"],
    "interrupts": ["tests.databases.test_execution.interrupt_task"],
}


def drain() -> None:
    """Run an in-process worker until no runnable job is left."""
    from django_dbq.worker import Worker

    Worker("default", drain=True).run()


@pytest.fixture
def user_code_jobs(settings):
    settings.JOBS = USER_CODE_JOBS


@pytest.mark.parametrize(
    ("name", "error_type", "message"),
    [
        ("pre_hook_raises", "RuntimeError", "user code exploded"),
        ("failure_hook_raises", "ValueError", "The failure hook raised RuntimeError"),
        ("missing_function", "ImportError", "no_such_function"),
        ("missing_module", "ModuleNotFoundError", "tests.no_such_module"),
        ("unserialisable", "TypeError", "not JSON serializable"),
        ("exits", "SystemExit", "3"),
        ("interrupts", "KeyboardInterrupt", ""),
    ],
)
def test_misbehaving_user_code_fails_the_job_and_the_worker_goes_on(
    user_code_jobs, name, error_type, message
):
    bad = Job.objects.create(name=name, workspace={"input": 0})
    good = Job.objects.create(name="chain", workspace={"input": 1}, priority=-1)
    drain()
    bad.refresh_from_db()
    assert bad.state == "FAILED"
    assert bad.error.startswith(error_type)
    assert message in bad.error
    assert bad.lease_token is None
    good.refresh_from_db()
    assert good.state == "COMPLETE"
    assert good.workspace["three"] == 7


def test_unserialisable_workspace_keeps_the_last_checkpoint(user_code_jobs):
    job = Job.objects.create(name="unserialisable", workspace={"input": 1})
    drain()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert job.workspace == {"input": 1, "one": 2}
    assert job.next_task == "tests.databases.test_execution.leave_unserialisable_workspace"


def test_raising_creation_hook_writes_nothing(user_code_jobs):
    with pytest.raises(RuntimeError, match="user code exploded"):
        Job.objects.create(name="creation_hook_raises")
    assert not Job.objects.exists()


def test_job_whose_name_left_jobs_after_it_was_enqueued_fails(user_code_jobs):
    job = Job.objects.create(name="noop")
    good = Job.objects.create(name="noop", priority=-1)
    Job.objects.filter(pk=job.pk).update(name="vanished")
    drain()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert "no longer defined in JOBS" in job.error
    good.refresh_from_db()
    assert good.state == "COMPLETE"


def test_row_naming_a_task_outside_its_definition_fails_and_imports_nothing(user_code_jobs):
    import sys

    # ``this`` prints the Zen of Python when imported: bait that must stay untouched.
    assert "this" not in sys.modules
    job = Job.objects.create(name="chain")
    Job.objects.filter(pk=job.pk).update(next_task="this.boom")
    drain()
    job.refresh_from_db()
    assert job.state == "FAILED"
    assert "'this.boom' is not a step of job 'chain'" in job.error
    assert "this" not in sys.modules


def test_raising_signal_receiver_does_not_fail_the_job(user_code_jobs):
    from django_dbq import signals

    def receiver(**kwargs):
        raise RuntimeError("receiver exploded")

    signals.job_started.connect(receiver, weak=False)
    signals.job_completed.connect(receiver, weak=False)
    try:
        job = Job.objects.create(name="chain", workspace={"input": 1})
        drain()
    finally:
        signals.job_started.disconnect(receiver)
        signals.job_completed.disconnect(receiver)
    job.refresh_from_db()
    assert job.state == "COMPLETE"
