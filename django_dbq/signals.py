"""Signals for monitoring. Every signal is sent with ``sender=Job`` and ``job=<Job>``.

- ``job_created``: after a job is inserted (``save``/``create``/``bulk_create``).
- ``job_started``: a worker claimed the job and is about to run its next step.
- ``step_finished``: a step returned; ``task`` is its dotted path.
- ``job_completed``: the last step finished.
- ``job_failed``: the job failed for good; ``exception`` is the error (None when the worker was lost).
- ``job_retried``: a failed attempt will run again; ``delay`` seconds, ``manual`` True for ``Job.retry()``.
- ``job_rescued``: a lapsed lease was taken back from a lost worker.
- ``job_cancelled``: the job was cancelled.
"""

from django.dispatch import Signal

job_created = Signal()
job_started = Signal()
step_finished = Signal()
job_completed = Signal()
job_failed = Signal()
job_retried = Signal()
job_rescued = Signal()
job_cancelled = Signal()
