"""Wake-ups: channel names for any queue name, LISTEN on PostgreSQL only, polling otherwise."""

import re

import pytest
from django.db import connection

from django_dbq.backends.base import Poller
from django_dbq.backends.postgresql import PostgresListener, channel_name
from django_dbq.models import Job
from django_dbq.worker import Worker
from tests.conftest import wait_for
from tests.helpers import STRANGE_QUEUES, in_thread, stop_thread

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def test_channel_names_are_safe_identifiers_matching_the_trigger():
    channels = {channel_name(name) for name in STRANGE_QUEUES + ["default"]}
    assert len(channels) == len(STRANGE_QUEUES) + 1
    assert all(re.fullmatch(r"dbq_[0-9a-f]{32}", channel) for channel in channels)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for name in STRANGE_QUEUES:
                cursor.execute("SELECT 'dbq_' || md5(%s)", [name])
                assert cursor.fetchone()[0] == channel_name(name)


def test_worker_with_listen_off_polls_and_works(settings):
    settings.DBQ_LISTEN = False
    worker = Worker("default", poll_interval=0.1)
    assert worker.listen is False
    assert type(worker._make_waiter()) is Poller
    thread = in_thread(worker)
    try:
        wait_for(lambda: worker._threads, what="the worker to start")
        job = Job.objects.create(name="chain", workspace={"input": 1})
        wait_for(lambda: Job.objects.get(pk=job.pk).state == "COMPLETE", what="the job")
    finally:
        stop_thread(worker, thread)


def test_listener_is_used_on_postgresql_only():
    waiter = Worker("default", listen=True)._make_waiter()
    try:
        expected = PostgresListener if connection.vendor == "postgresql" else Poller
        assert type(waiter) is expected
    finally:
        waiter.close()
