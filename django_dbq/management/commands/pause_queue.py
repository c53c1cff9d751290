"""``manage.py pause_queue NAME [NAME ...]``: workers stop claiming jobs of these queues."""

from django_dbq import queues

from ._pausing import QueueStateCommand


class Command(QueueStateCommand):
    help = (
        "Pause queues: their waiting jobs wait until resume_queue (running steps finish). "
        "A queue with no jobs may be paused too."
    )
    change = staticmethod(queues.pause)
    done = "paused"
    unchanged = "already paused"
