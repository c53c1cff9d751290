"""Imported at start-up (through ``PYTHONPATH``) by test processes run under libfaketime.

libfaketime 0.9.10 (Debian 12) fails Python's ``time.sleep`` with ``EINVAL`` when it
leaves the monotonic clock alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``, which the lease
clock tests need, because the monotonic clock must stay true for thread waits): since
Python 3.11 a sleep is a ``clock_nanosleep`` to an absolute monotonic deadline, and the
library shifts that deadline. Sleeping in ``select()`` waits the same time on the
true clock, as ``time.sleep`` itself did before 3.11. Only the wall clock stays shifted.
"""

import os
import select
import time

if os.environ.get("FAKETIME"):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            select.select([], [], [], remaining)

    time.sleep = _sleep
