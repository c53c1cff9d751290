"""The worker: a loop that claims and runs jobs, and the threads that keep its claims.

- :mod:`.loop`: :class:`Worker`, claiming and running jobs until shut down;
- :mod:`.execution`: one claimed job's steps, hooks, timeouts and outcome;
- :mod:`.heartbeat` and :mod:`.maintenance`: the background threads;
- :mod:`.held`, :mod:`.shutdown`, :mod:`.pacing`, :mod:`.outages`: what they share.
"""

from .loop import Worker

__all__ = ["Worker"]
