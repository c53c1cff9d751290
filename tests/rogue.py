"""A module that no setting names: a row that names it must not get it imported.

It records each import in the file ``DBQ_ROGUE_PROBE`` names
(tests/processes/test_task_registry.py).
"""

import os

if os.environ.get("DBQ_ROGUE_PROBE"):
    with open(os.environ["DBQ_ROGUE_PROBE"], "a") as marker:
        marker.write(f"tests.rogue imported in {os.getpid()}\n")


def anything(*args, **kwargs):
    return "rogue code ran"
