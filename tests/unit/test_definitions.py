"""Parsing ``JOBS`` (both forms), retry policies, and the 3.x hook-name helpers."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dbq import conf, tasks
from django_dbq.definitions import (
    DefinitionError,
    get_definition,
    parse_definition,
    parse_jobs,
)

pytestmark = pytest.mark.unit


def test_short_form_is_a_list_of_task_paths():
    definition = parse_definition("short", ["a.b", "a.c"])
    assert definition.tasks == ("a.b", "a.c")
    assert definition.creation_hook is None and definition.failure_hook is None
    assert definition.max_attempts == 1  # default: one attempt, as in 3.x


def test_dict_form_with_every_hook():
    definition = parse_definition(
        "full",
        {
            "tasks": ["a.b"],
            "creation_hook": "h.create",
            "pre_task_hook": "h.pre",
            "post_task_hook": "h.post",
            "failure_hook": "h.fail",
        },
    )
    assert definition.tasks == ("a.b",)
    assert (definition.creation_hook, definition.pre_task_hook) == ("h.create", "h.pre")
    assert (definition.post_task_hook, definition.failure_hook) == ("h.post", "h.fail")


def test_dict_form_with_retry_and_timeout_options():
    definition = parse_definition(
        "retry",
        {
            "tasks": ["a.b"],
            "max_attempts": 4,
            "retry_backoff": "fixed",
            "retry_delay": 2.5,
            "retry_delay_max": 10,
            "timeout": 30,
        },
    )
    assert definition.max_attempts == 4
    assert definition.retry_backoff == "fixed"
    assert definition.retry_delay == 2.5 and definition.retry_delay_max == 10
    assert definition.timeout == 30


def test_concurrency_per_key_is_one_unless_the_entry_sets_it():
    assert parse_definition("job", ["a.b"]).concurrency_per_key == 1
    entry = {"tasks": ["a.b"], "concurrency_per_key": 3}
    assert parse_definition("job", entry).concurrency_per_key == 3


@pytest.mark.parametrize(
    "name, raw, check_id",
    [
        ("", ["a.b"], "django_dbq.E002"),
        (7, ["a.b"], "django_dbq.E002"),
        ("django.tasks:x", ["a.b"], "django_dbq.E002"),
        ("job", "a.b", "django_dbq.E002"),
        ("job", [], "django_dbq.E002"),
        ("job", {"tasks": []}, "django_dbq.E002"),
        ("job", {"failure_hook": "a.b"}, "django_dbq.E002"),
        ("job", ["a.b", "a.b"], "django_dbq.E002"),
        ("job", [None], "django_dbq.E003"),
        ("job", {"tasks": ["a.b"], "failure_hook": 3}, "django_dbq.E003"),
        ("job", {"tasks": ["a.b"], "retries": 3}, "django_dbq.E004"),
        ("job", {"tasks": ["a.b"], "max_attempts": 0}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "max_attempts": 2.5}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "max_attempts": True}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "retry_backoff": "linear"}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "retry_delay": -1}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "retry_delay_max": "1"}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "timeout": 0}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "timeout": "5"}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "concurrency_per_key": 0}, "django_dbq.E005"),
        ("job", {"tasks": ["a.b"], "concurrency_per_key": None}, "django_dbq.E005"),
    ],
)
def test_malformed_entries_are_reported_with_a_check_id_and_hint(name, raw, check_id):
    with pytest.raises(DefinitionError) as caught:
        parse_definition(name, raw)
    assert caught.value.check_id == check_id
    assert caught.value.hint
    assert isinstance(caught.value, ImproperlyConfigured)


def test_parse_jobs_collects_every_problem_and_keeps_the_good_entries():
    definitions, problems = parse_jobs({"good": ["a.b"], "bad": [], "worse": {"x": 1}})
    assert list(definitions) == ["good"]
    # "worse": an unknown key and no tasks, both reported
    assert [problem.check_id for problem in problems] == [
        "django_dbq.E002",
        "django_dbq.E004",
        "django_dbq.E002",
    ]


def test_every_problem_of_one_entry_is_reported():
    raw = {"tasks": ["a.b"], "max_attempts": 0, "timeout": "5", "failure_hook": "nodots"}
    problems = parse_jobs({"job": raw})[1]
    assert sorted(problem.check_id for problem in problems) == [
        "django_dbq.E003",
        "django_dbq.E005",
        "django_dbq.E005",
    ]


def test_a_malformed_task_path_is_reported_but_the_job_can_be_created():
    """django-db-queue 3.x test suites create jobs whose tasks are placeholders."""
    with override_settings(JOBS={"testjob": {"tasks": ["a"]}}):
        definition = parse_definition("testjob", {"tasks": ["a"]})
        assert definition.tasks == ("a",)
        assert [p.check_id for p in parse_jobs({"testjob": ["a"]})[1]] == ["django_dbq.E003"]
    assert parse_jobs(["a.b"])[1][0].check_id == "django_dbq.E001"


@override_settings(DBQ_MAX_ATTEMPTS=3, DBQ_RETRY_BACKOFF="fixed", DBQ_RETRY_DELAY=7)
def test_global_retry_settings_are_the_defaults_of_every_definition():
    definition = parse_definition("job", ["a.b"])
    assert (definition.max_attempts, definition.retry_backoff, definition.retry_delay) == (
        3,
        "fixed",
        7,
    )
    assert parse_definition("job", {"tasks": ["a.b"], "max_attempts": 1}).max_attempts == 1


@override_settings(DBQ_MAX_ATTEMPTS=0)
def test_an_invalid_global_default_is_a_problem_of_the_entries_not_a_crash():
    definitions, problems = parse_jobs({"job": ["a.b"]})
    assert definitions == {}
    assert problems[0].check_id == "django_dbq.E008"
    # An entry that sets the value itself does not need the broken default.
    assert parse_jobs({"job": {"tasks": ["a.b"], "max_attempts": 2}}) == (
        {"job": parse_definition("job", {"tasks": ["a.b"], "max_attempts": 2})},
        [],
    )


@pytest.mark.parametrize(
    "key, bad",
    [
        ("max_attempts", 0),
        ("retry_backoff", "linear"),
        ("retry_delay", -1),
        ("retry_delay", float("nan")),
        ("retry_delay_max", 0),
        ("max_snoozes", -1),
    ],
)
def test_a_job_setting_its_dbq_default_and_the_tasks_option_follow_one_rule(key, bad):
    from django_dbq.tasks_backend import DatabaseBackend

    assert [p.check_id for p in parse_jobs({"job": {"tasks": ["a.b"], key: bad}})[1]] == [
        "django_dbq.E005"
    ]
    setting = conf.JOB_SETTINGS[key]
    with override_settings(**{setting: bad}), pytest.raises(ImproperlyConfigured, match=setting):
        conf.get(setting)
    if key != "max_snoozes":  # not a Tasks option: DBQ_MAX_SNOOZES sets it
        with pytest.raises(ImproperlyConfigured, match=key):
            DatabaseBackend("broken", {"OPTIONS": {key: bad}})


def test_zero_snoozes_is_a_valid_setting():
    with override_settings(DBQ_MAX_SNOOZES=0):
        assert parse_definition("job", ["a.b"]).max_snoozes == 0


@override_settings(DBQ_MAX_SNOOZES=3, DBQ_RETRY_DELAY_MAX=9)
def test_a_definition_made_in_code_takes_the_dbq_defaults_too():
    from django_dbq.definitions import JobDefinition

    definition = JobDefinition(name="job", tasks=("a.b",))
    assert (definition.max_snoozes, definition.retry_delay_max) == (3, 9)


def test_fixed_backoff_waits_the_same_every_time():
    definition = parse_definition(
        "job", {"tasks": ["a.b"], "retry_backoff": "fixed", "retry_delay": 3}
    )
    assert {definition.retry_delay_for(attempt) for attempt in range(1, 8)} == {3}


def test_exponential_backoff_doubles_with_jitter_and_is_capped():
    definition = parse_definition(
        "job", {"tasks": ["a.b"], "retry_delay": 2, "retry_delay_max": 20}
    )
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 20), (30, 20), (5000, 20)]:
        delays = [definition.retry_delay_for(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered, so retries of many jobs spread out


def test_hook_name_helpers_from_3x():
    assert tasks.get_creation_hook_name("hooked") == "tests.jobs.creation_hook"
    assert tasks.get_pre_task_hook_name("hooked") == "tests.jobs.pre_task_hook"
    assert tasks.get_post_task_hook_name("hooked") == "tests.jobs.post_task_hook"
    assert tasks.get_failure_hook_name("failing") == "tests.jobs.record_failure"
    assert tasks.get_failure_hook_name("noop") is None


def test_hook_loads_the_function_by_its_path():
    from tests import jobs

    assert get_definition("hooked").hook("creation_hook") is jobs.creation_hook
    assert get_definition("noop").hook("failure_hook") is None
