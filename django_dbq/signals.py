"""Signals for monitoring. Every signal is sent with ``sender=Job`` and ``job=<Job>``.

Receivers run in the process that made the change (the web process for
``job_created``, the worker for most others); an exception in a receiver
propagates like any Django signal, so keep receivers small and safe.

- ``job_created(job)``: after a job is inserted (``save``/``create``/``bulk_create``).
- ``job_started(job)``: a worker claimed the job and is about to run its next step
  (sent once per run: again after a retry, a release or a rescue).
- ``step_finished(job, task)``: a step returned and was saved; ``task`` is its dotted path.
- ``job_completed(job)``: the last step finished; the job is ``COMPLETE``.
- ``job_failed(job, exception)``: the job failed for good (no attempt left, ``FailPermanently``,
  or lost too often); ``exception`` is the error, None when the worker was lost.
- ``job_retried(job, delay, manual)``: the job will run again: ``delay`` is the seconds until then
  (a float; 0 for a retry by hand), ``manual`` is True for ``Job.retry()``/``retry_job``.
- ``job_rescued(job)``: a lapsed lease was taken back from a lost worker.
- ``job_cancelled(job)``: the job is ``CANCELLED`` (at once for a waiting job; at the end of
  its current step for a running one).
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
