"""Prometheus metrics (the optional ``prometheus`` extra: ``pip install django-dbq[prometheus]``).

Two sources, so that no number is counted twice across workers and hosts:

- :mod:`.gauges`: what the database says now (jobs per queue and state, the oldest
  runnable job's age, workers holding jobs), read at scrape time by whatever serves
  them: the view in :mod:`.views`, mounted in your URLconf;
- :mod:`.counters`: what one worker process did (jobs started, completed, failed...,
  step durations, waits), served by ``manage.py worker --metrics-port PORT``.

Nothing here is imported unless you use it: without the extra the queue costs nothing.
"""
