"""Django's Tasks framework on django_dbq: the public Tasks API, run by real worker processes.

The same tests run on Django 6.x (``django.tasks``) and on Django 5.2 with the
django-tasks backport, on SQLite, PostgreSQL and MariaDB.
"""

import datetime
import os
import signal
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from django_dbq.models import Job
from django_dbq.tasks_backend import DatabaseBackend
from tests import tasks_app
from tests.conftest import wait_for
from tests.models import Execution

try:
    from django.tasks import TaskResultStatus, default_task_backend, task_backends
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
    from django.tasks.signals import task_enqueued
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import TaskResultStatus, default_task_backend, task_backends
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
    from django_tasks.signals import task_enqueued

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_line,
    pytest.mark.django_db(transaction=True),
]


def drain(start_worker, *queues, env=None, failing=False):
    """Run one ``manage.py worker --drain`` over ``queues`` to the end; return its log.

    With ``failing``, a task fails on purpose: django-tasks logs its traceback
    (its ``task_finished`` receiver), so the worker's log holds one.
    """
    worker = start_worker("--drain", *queues, env=env, expect_tracebacks=failing)
    assert worker.wait() == 0, worker.log()[-3000:]
    return worker.log()


def steps(key):
    return list(
        Execution.objects.filter(job_id=str(key)).order_by("id").values_list("step", flat=True)
    )


# -- enqueue, run, read back -------------------------------------------------------


def test_enqueued_task_runs_and_its_result_reads_back(start_worker):
    result = tasks_app.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    assert result.args == [2, 3] and result.kwargs == {}
    assert result.backend == "default"
    assert result.enqueued_at is not None and result.started_at is None
    assert result.attempts == 0 and not result.is_finished
    with pytest.raises(ValueError):
        result.return_value  # noqa: B018 - not finished yet

    stored = default_task_backend.get_result(result.id)
    assert stored.id == result.id and stored.status == TaskResultStatus.READY
    assert stored.task.func is tasks_app.add.func

    drain(start_worker)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert result.return_value == 5
    assert result.errors == []
    assert result.attempts == 1 and len(result.worker_ids) == 1 and result.worker_ids[0]
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at

    again = tasks_app.add.get_result(result.id)
    assert again.return_value == 5 and again.worker_ids == result.worker_ids


def test_arguments_and_return_values_are_json(start_worker):
    result = tasks_app.echo.enqueue(1, (2, 3), b"bytes", flag=True, nested={"a": [None, 1.5]})
    assert result.args == [1, [2, 3], "bytes"]
    drain(start_worker)
    result.refresh()
    assert result.return_value == {
        "args": [1, [2, 3], "bytes"],
        "kwargs": {"flag": True, "nested": {"a": [None, 1.5]}},
    }


def test_non_json_return_value_fails_the_task(start_worker):
    result = tasks_app.returns_a_set.enqueue()
    drain(start_worker, failing=True)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "builtins.TypeError"
    assert "not JSON" in result.errors[0].traceback


def test_unknown_result_ids(start_worker):
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(str(uuid.uuid4()))
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("not-a-uuid")
    exploded = tasks_app.explode.enqueue("x")
    with pytest.raises(TaskResultMismatch):
        tasks_app.add.get_result(exploded.id)
    # A result belongs to the backend that stored it.
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["retrying"].get_result(exploded.id)


# -- failures and retries -------------------------------------------------------------


def test_failure_records_exception_class_and_traceback(start_worker):
    result = tasks_app.explode.enqueue("the boiler")
    drain(start_worker, failing=True)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.finished_at is not None
    with pytest.raises(ValueError):
        result.return_value  # noqa: B018 - failed
    assert len(result.errors) == 1 and result.attempts == 1
    error = result.errors[0]
    assert error.exception_class_path == "tests.tasks_app.TaskWentWrong"
    assert error.exception_class is tasks_app.TaskWentWrong
    assert "raise TaskWentWrong(message)" in error.traceback
    assert "TaskWentWrong: the boiler" in error.traceback


def test_per_task_max_attempts_retries_until_success(start_worker):
    key = uuid.uuid4()
    result = tasks_app.flaky.enqueue(str(key), 3)
    drain(start_worker)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.attempts == 3 and len(result.worker_ids) == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.RuntimeError"] * 2
    assert result.errors[0].exception_class is RuntimeError
    assert steps(key) == ["attempt 1", "attempt 2", "attempt 3"]


def test_per_task_max_attempts_then_fails(start_worker):
    key = uuid.uuid4()
    result = tasks_app.flaky.enqueue(str(key), 10)
    drain(start_worker, failing=True)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3 and len(result.errors) == 3
    assert "attempt 3 fails" in result.errors[-1].traceback
    assert steps(key) == ["attempt 1", "attempt 2", "attempt 3"]


def test_backend_options_set_the_retry_policy(start_worker):
    once, twice = uuid.uuid4(), uuid.uuid4()
    default = tasks_app.always_fails.enqueue(str(once))
    retrying = tasks_app.always_fails.using(backend="retrying").enqueue(str(twice))
    assert retrying.backend == "retrying"
    drain(start_worker, failing=True)
    default.refresh()
    retrying.refresh()  # through the "retrying" backend
    assert default.status == retrying.status == TaskResultStatus.FAILED
    assert default.attempts == 1 and steps(once) == ["attempt 1"]
    assert retrying.attempts == 2 and steps(twice) == ["attempt 1", "attempt 2"]


def test_backend_options_set_a_retry_policy_per_task(start_worker):
    # OPTIONS["tasks"] of the "retrying" backend gives explode three attempts.
    here = tasks_app.explode.enqueue("once")
    there = tasks_app.explode.using(backend="retrying").enqueue("thrice")
    drain(start_worker, failing=True)
    here.refresh()
    there.refresh()
    assert here.status == there.status == TaskResultStatus.FAILED
    assert here.attempts == 1 and there.attempts == 3
    assert [e.exception_class is tasks_app.TaskWentWrong for e in there.errors] == [True] * 3


def test_fail_permanently_skips_the_remaining_attempts(start_worker):
    key = uuid.uuid4()
    result = tasks_app.give_up.enqueue(str(key))
    drain(start_worker, failing=True)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.attempts == 1
    assert result.errors[0].exception_class_path == "django_dbq.exceptions.FailPermanently"
    assert steps(key) == ["gave up"]


def test_per_task_timeout_stops_a_task(start_worker):
    result = tasks_app.oversleep.enqueue()
    drain(start_worker, failing=True)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "django_dbq.exceptions.StepTimeout"


def test_per_task_timeout_cancels_an_async_task(start_worker):
    # Were the coroutine left running, the worker could not exit: drain() would time out.
    result = tasks_app.async_oversleep.enqueue()
    drain(start_worker, failing=True)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "django_dbq.exceptions.StepTimeout"


# -- transactions ---------------------------------------------------------------------


def test_rolled_back_enqueue_enqueues_nothing(start_worker):
    with pytest.raises(RuntimeError), transaction.atomic():
        result = tasks_app.add.enqueue(1, 1)
        assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY
        raise RuntimeError("roll back")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)

    with transaction.atomic():
        committed = tasks_app.add.enqueue(2, 2)
    drain(start_worker)
    committed.refresh()
    assert committed.return_value == 4


# -- scheduling: priority, queues, run_after -------------------------------------------


def test_higher_priority_runs_first(start_worker):
    key = uuid.uuid4()
    for label, priority in [("low", -5), ("middle", 0), ("high", 10), ("top", 100)]:
        tasks_app.remember.using(priority=priority).enqueue(str(key), label)
    drain(start_worker, "tasks")
    assert steps(key) == ["top", "high", "middle", "low"]


def test_queues_allow_list_and_queue_routing(start_worker):
    with pytest.raises(InvalidTask, match="not valid"):
        tasks_app.add.using(queue_name="unlisted")
    # A backend whose QUEUES is empty takes any queue name.
    anywhere = tasks_app.add.using(backend="retrying", queue_name="unlisted").enqueue(1, 2)

    key = uuid.uuid4()
    result = tasks_app.remember.enqueue(str(key), "ran")
    assert result.task.queue_name == "tasks"
    drain(start_worker)  # the "default" queue only
    result.refresh()
    assert result.status == TaskResultStatus.READY and steps(key) == []

    drain(start_worker, "tasks", "unlisted")
    result.refresh()
    anywhere.refresh()
    assert result.return_value == "ran" and steps(key) == ["ran"]
    assert anywhere.return_value == 3


def test_run_after_defers_the_task(start_worker):
    later = timezone.now() + datetime.timedelta(hours=1)
    deferred = tasks_app.add.using(run_after=later).enqueue(1, 2)
    due = tasks_app.add.using(run_after=timezone.now() - datetime.timedelta(seconds=1)).enqueue(
        3, 4
    )
    drain(start_worker)
    deferred.refresh()
    due.refresh()
    assert due.return_value == 7
    assert deferred.status == TaskResultStatus.READY and deferred.started_at is None
    assert default_task_backend.get_result(deferred.id).task.run_after == later


# -- async, context, signals -------------------------------------------------------------


def test_async_task_and_async_api(start_worker):
    async def enqueue():
        return await tasks_app.async_multiply.aenqueue(6, 7)

    result = async_to_sync(enqueue)()
    drain(start_worker)

    async def read():
        fetched = await default_task_backend.aget_result(result.id)
        await result.arefresh()
        return fetched

    fetched = async_to_sync(read)()
    assert fetched.return_value == 42
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42


def test_takes_context_receives_its_own_result(start_worker):
    result = tasks_app.describe_context.enqueue("hello")
    drain(start_worker)
    result.refresh()
    assert result.return_value == {
        "id": result.id,
        "attempt": 1,
        "status": "RUNNING",
        "args": ["hello"],
        "label": "hello",
    }


@pytest.mark.parametrize("mode", ["single", "async"])
def test_a_task_reports_its_progress_through_its_result(start_worker, mode):
    rows = 40
    synchronous = tasks_app.counts_rows.enqueue(rows)
    asynchronous = tasks_app.async_counts_rows.enqueue(rows)
    assert synchronous.progress is None
    worker = start_worker("--drain", *(("--mode", mode) if mode == "async" else ()))
    assert worker.wait() == 0, worker.log()[-3000:]
    last = {"done": rows, "total": rows, "message": f"row {rows}"}
    for result in (synchronous, asynchronous):
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
        assert result.progress == last
        assert default_task_backend.get_result(result.id).progress == last
    # Inside the task, its result held what it had reported.
    assert synchronous.return_value == last


def test_signals_are_sent(start_worker):
    enqueued = []

    def on_enqueued(sender, task_result, **kwargs):
        enqueued.append((sender, task_result.id, task_result.status))

    task_enqueued.connect(on_enqueued, dispatch_uid="test-enqueued")
    try:
        good = tasks_app.add.enqueue(1, 1)
        bad = tasks_app.explode.enqueue("no")
    finally:
        task_enqueued.disconnect(dispatch_uid="test-enqueued")
    assert enqueued == [
        (DatabaseBackend, good.id, TaskResultStatus.READY),
        (DatabaseBackend, bad.id, TaskResultStatus.READY),
    ]
    # task_started/task_finished fire in the worker; tests.tasks_app's receivers record them.
    drain(start_worker, failing=True)
    assert steps(good.id) == ["started RUNNING by DatabaseBackend", "finished SUCCESSFUL"]
    assert steps(bad.id) == ["started RUNNING by DatabaseBackend", "finished FAILED"]


# -- security: only Task objects run ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["tests.tasks_app.not_a_task", "os.system", "tests.tasks_app.nowhere"]
)
def test_a_row_naming_anything_but_a_task_fails_and_nothing_is_called(start_worker, path, tmp_path):
    key = uuid.uuid4()
    marker = tmp_path / "called"
    argument = str(key) if path.startswith("tests.") else f"touch {marker}"
    result = tasks_app.add.enqueue(1, 2)
    # Someone with write access to the table points the row at other code.
    Job.objects.filter(pk=result.id).update(
        name=f"django.tasks:default:{path}",
        next_task=path,
        workspace={"args": [argument], "kwargs": {}},
    )
    drain(start_worker)
    job = Job.objects.get(pk=result.id)
    assert job.state == Job.STATES.FAILED
    # Looked up among the registered tasks, never imported.
    assert (
        job.error.startswith("UnregisteredTask: ") and "not a registered Django Task" in job.error
    )
    assert steps(key) == [] and not marker.exists()
    with pytest.raises(InvalidTask):
        default_task_backend.get_result(result.id)


def test_a_row_whose_step_differs_from_its_name_fails(start_worker):
    key = uuid.uuid4()
    result = tasks_app.add.enqueue(1, 2)
    Job.objects.filter(pk=result.id).update(
        next_task="tests.tasks_app.not_a_task", workspace={"args": [str(key)], "kwargs": {}}
    )
    drain(start_worker)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and steps(key) == []


# -- one worker for jobs and tasks; rescue ----------------------------------------------


def test_one_worker_serves_native_jobs_and_tasks(start_worker):
    job = Job.objects.create(name="chain", workspace={"input": 1})
    key = uuid.uuid4()
    added = tasks_app.add.enqueue(20, 22)
    remembered = tasks_app.remember.enqueue(str(key), "both")
    drain(start_worker, "default", "tasks")
    job.refresh_from_db()
    added.refresh()
    remembered.refresh()
    assert job.state == Job.STATES.COMPLETE and job.workspace["three"] == 7
    assert added.return_value == 42 and remembered.return_value == "both"


def test_a_task_whose_worker_dies_is_rescued_and_run_again(start_worker):
    key = uuid.uuid4()
    result = tasks_app.nap.enqueue(str(key), 3600)
    env = {"DBQ_LEASE_SECONDS": "1"}
    doomed = start_worker(env=env)
    wait_for(lambda: "nap started" in steps(key), what="the task to start")
    result.refresh()
    assert result.status == TaskResultStatus.RUNNING
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()

    # The task sleeps an hour; switch it to a short nap so the rescuer can finish it.
    Job.objects.filter(pk=result.id).update(workspace={"args": [str(key), 0], "kwargs": {}})
    rescuer = start_worker(env=env)
    wait_for(
        lambda: default_task_backend.get_result(result.id).is_finished,
        what="the rescued task to finish",
    )
    rescuer.signal(signal.SIGTERM)
    assert rescuer.wait() == 0
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == "rested"
    assert result.attempts == 2
    assert result.errors[0].exception_class_path.endswith(".WorkerLost")
    assert result.worker_ids[0] != result.worker_ids[1]


def test_sigterm_lets_the_running_task_finish(start_worker):
    key = uuid.uuid4()
    result = tasks_app.nap.enqueue(str(key), 2)
    worker = start_worker()
    wait_for(lambda: "nap started" in steps(key), what="the task to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == "rested"
    assert result.attempts == 1 and steps(key) == ["nap started"]


def test_several_workers_run_each_task_once(start_worker):
    key = uuid.uuid4()
    results = [tasks_app.remember.enqueue(str(key), f"task {n}") for n in range(30)]
    workers = [start_worker("--drain", "tasks") for _ in range(3)]
    for worker in workers:
        assert worker.wait() == 0, worker.log()[-3000:]
    assert sorted(steps(key)) == sorted(f"task {n}" for n in range(30))
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL and result.attempts == 1


def test_second_sigterm_stops_an_async_task_at_once(start_worker):
    # The coroutine runs in an event loop thread: left running, it would keep the worker
    # from exiting. The second signal must cancel it and release the task.
    key = uuid.uuid4()
    result = tasks_app.async_nap.enqueue(str(key))
    worker = start_worker()
    wait_for(lambda: "async nap started" in steps(key), what="the task to start")
    worker.signal(signal.SIGTERM)
    wait_for(
        lambda: Job.objects.filter(pk=result.id, state="STOPPING").exists(),
        what="the worker to mark the task STOPPING",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    result.refresh()
    assert result.status == TaskResultStatus.READY and result.errors == []
