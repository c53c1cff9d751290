"""``@task`` functions for tests/processes/test_tasks_backend.py (run by real worker processes).

Tasks and signal receivers write to the ``tests_execution`` table so that the test
process can see what ran in the worker, and in which order.
"""

import asyncio
import os

from asgiref.sync import sync_to_async
from django.db import connection
from django.dispatch import receiver

try:
    from django.tasks import task
    from django.tasks.signals import task_finished, task_started
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task
    from django_tasks.signals import task_finished, task_started


class TaskWentWrong(Exception):
    pass


def record(key, step):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tests_execution (job_id, step, pid) VALUES (%s, %s, %s)",
            [str(key), str(step)[:50], os.getpid()],
        )


@task
def add(a, b):
    return a + b


@task
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@task(concurrency_key="account:{account}", concurrency_per_key=2)
def sync_account(account, label=""):
    """At most two running at once per account (tests/databases/test_concurrency_keys.py)."""
    return account


@task
def explode(message):
    raise TaskWentWrong(message)


@task(priority=0, queue_name="tasks")
def remember(key, label):
    record(key, label)
    return label


@task(takes_context=True, max_attempts=3)
def flaky(context, key, succeed_on):
    """Fails until its attempt number reaches ``succeed_on`` (per-task retry setting)."""
    record(key, f"attempt {context.attempt}")
    if context.attempt < succeed_on:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return context.attempt


@task(takes_context=True)
def always_fails(context, key):
    record(key, f"attempt {context.attempt}")
    raise RuntimeError(f"attempt {context.attempt} fails")


@task
async def async_multiply(a, b):
    await asyncio.sleep(0)
    return a * b


@task(takes_context=True)
def describe_context(context, label):
    return {
        "id": context.task_result.id,
        "attempt": context.attempt,
        "status": str(context.task_result.status),
        "args": context.task_result.args,
        "label": label,
    }


@task(takes_context=True)
def counts_rows(context, rows):
    """Reports its progress through its result, row after row."""
    for number in range(1, rows + 1):
        context.task_result.set_progress(number, rows, message=f"row {number}")
    return context.task_result.progress


@task(takes_context=True)
async def async_counts_rows(context, rows):
    for number in range(1, rows + 1):
        await context.task_result.aset_progress(number, rows, message=f"row {number}")
    return rows


@task
def returns_a_set():
    return {1, 2, 3}


def not_a_task(key):
    """A plain function: a row naming it must never get it called."""
    record(key, "plain function called")


@receiver(task_started, dispatch_uid="tests.tasks_app.started")
def _record_started(sender, task_result, **kwargs):
    record(task_result.id, f"started {task_result.status} by {sender.__name__}")


@receiver(task_finished, dispatch_uid="tests.tasks_app.finished")
def _record_finished(sender, task_result, **kwargs):
    record(task_result.id, f"finished {task_result.status}")


@task
def nap(key, seconds):
    record(key, "nap started")
    import time

    time.sleep(seconds)
    return "rested"


def _hidden(value):
    return value


# Bound under another name: the worker could not find it by its module path.
renamed = task(_hidden)


@task(timeout=1)
def oversleep():
    import time

    time.sleep(60)


@task(max_attempts=3)
def give_up(key):
    from django_dbq.exceptions import FailPermanently

    record(key, "gave up")
    raise FailPermanently("no point retrying")


@task(timeout=1)
async def async_oversleep():
    await asyncio.sleep(3600)


@task
async def async_nap(key):
    await sync_to_async(record)(key, "async nap started")
    await asyncio.sleep(3600)
