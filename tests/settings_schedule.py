"""The test settings plus a schedule that ticks every second (recurring jobs' tests)."""

from testsettings import *  # noqa: F403

DBQ_SCHEDULE = {
    "every-second": {
        "job": "noop",
        "cron": "* * * * * *",  # croniter's sixth field: seconds
        "queue_name": "cron-test",
        "workspace": {"from": "schedule"},
    }
}
