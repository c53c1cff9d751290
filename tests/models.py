from django.db import models
from django.db.models.functions import Now


class Execution(models.Model):
    """One run of a test task: lets the tests count how often each step ran."""

    job_id = models.CharField(max_length=36, db_index=True)
    step = models.CharField(max_length=50)
    pid = models.IntegerField()
    at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.step} of {self.job_id} in {self.pid}"
