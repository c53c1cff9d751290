"""The guarantee tests' settings plus ``DBQ_QUEUES`` from ``DBQ_TEST_QUEUES`` (JSON).

Used by the queue-limit tests' workers (tests/processes/test_queue_limits.py).
"""

import json
import os

from tests.settings_guarantees import *  # noqa: F403

DBQ_QUEUES = json.loads(os.environ.get("DBQ_TEST_QUEUES", "{}"))
