"""``manage.py resume_queue NAME [NAME ...]``: workers claim jobs of these queues again."""

from django_dbq import queues

from ._pausing import QueueStateCommand


class Command(QueueStateCommand):
    help = "Resume paused queues: workers claim their jobs again."
    change = staticmethod(queues.resume)
    done = "resumed"
    unchanged = "was not paused"
