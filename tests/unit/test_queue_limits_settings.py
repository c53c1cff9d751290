"""``DBQ_QUEUES``: per-queue options (a concurrency limit), checked where every setting is."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dbq import conf
from django_dbq.checks import check_settings

pytestmark = pytest.mark.unit


def test_no_queue_is_limited_by_default():
    assert conf.DEFAULTS["DBQ_QUEUES"] == {}
    assert conf.queue_limits() == {}


def test_the_limits_are_read_from_the_setting():
    queues = {"emails": {"concurrency": 5}, "reports": {"concurrency": 1}, "free": {}}
    with override_settings(DBQ_QUEUES=queues):
        assert conf.queue_limits() == {"emails": 5, "reports": 1}
        assert check_settings() == []


def test_the_rates_are_read_from_the_setting_beside_the_limits():
    queues = {
        "api": {"rate": "100/m"},
        "fast": {"rate": "5/s", "concurrency": 2},
        "slow": {"rate": " 2 / h "},
        "emails": {"concurrency": 5},
        "free": {},
    }
    with override_settings(DBQ_QUEUES=queues):
        assert check_settings() == []
        # The fewest seconds between two starts of each rate-limited queue.
        assert conf.queue_rates() == {"api": 0.6, "fast": 0.2, "slow": 1800.0}
        assert conf.queue_limits() == {"fast": 2, "emails": 5}


@pytest.mark.parametrize(
    "value, parsed",
    [("1/s", (1, 1.0)), ("100/m", (100, 60.0)), ("7/h", (7, 3600.0)), ("0/s", None)]
    + [(bad, None) for bad in ["", "5", "5/", "5/min", "a/s", "5/s/s", 5, None, "1e3/s"]],
)
def test_parse_rate(value, parsed):
    assert conf.parse_rate(value) == parsed


@pytest.mark.parametrize(
    "value, words",
    [
        (["emails"], "DBQ_QUEUES must be a dict"),
        ({"emails": 5}, "DBQ_QUEUES['emails'] must be a dict"),
        ({"": {"concurrency": 1}}, "queue name"),
        ({"q" * 101: {"concurrency": 1}}, "queue name"),
        ({7: {"concurrency": 1}}, "queue name"),
        ({"emails": {"concurrency": 0}}, "DBQ_QUEUES['emails']['concurrency'] must be a whole"),
        ({"emails": {"concurrency": -3}}, "whole number of at least 1"),
        ({"emails": {"concurrency": 2.5}}, "whole number of at least 1"),
        ({"emails": {"concurrency": True}}, "whole number of at least 1"),
        ({"emails": {"concurrency": None}}, "whole number of at least 1"),
        ({"emails": {"concurency": 5}}, "unknown option(s) 'concurency'"),
        ({"emails": {"rate": 10}}, "DBQ_QUEUES['emails']['rate'] must be a rate"),
        ({"emails": {"rate": "0/m"}}, "DBQ_QUEUES['emails']['rate'] must be a rate"),
        ({"emails": {"rate": "10/d"}}, "must be a rate such as '100/m'"),
        ({"emails": {"rate": "10"}}, "must be a rate"),
        ({"emails": {"rate": "-1/s"}}, "must be a rate"),
        ({"emails": {"rate": "1.5/s"}}, "must be a rate"),
        ({"emails": {"rate": "/s"}}, "must be a rate"),
        ({"emails": {"rate": None}}, "must be a rate"),
        ({"emails": {"concurrency": 2, "rate": "ten/m"}}, "['rate'] must be a rate"),
    ],
)
def test_a_bad_value_is_a_check_error_and_refused_at_use(value, words):
    with override_settings(DBQ_QUEUES=value):
        errors = check_settings()
        assert [error.id for error in errors] == ["django_dbq.E008"]
        assert words in errors[0].msg
        assert errors[0].hint
        with pytest.raises(ImproperlyConfigured, match=r"DBQ_QUEUES"):
            conf.queue_limits()
        with pytest.raises(ImproperlyConfigured, match=r"DBQ_QUEUES"):
            conf.queue_rates()
