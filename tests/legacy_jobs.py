"""The steps of tests/jobs.py that tests/processes/test_upgrade.py runs under django-db-queue 3.3.0.

Copied as ``tests/jobs.py`` into the old project (tests/legacy_venv.py): the same
task paths and results as ours, without importing anything 3.3.0 does not have.
"""


def noop(job):
    pass


def step_one(job):
    job.workspace["one"] = job.workspace.get("input", 0) + 1


def step_two(job):
    job.workspace["two"] = job.workspace["one"] * 2


def step_three(job):
    job.workspace["three"] = job.workspace["two"] + 3


def raise_error(job):
    raise ValueError("task went wrong")
