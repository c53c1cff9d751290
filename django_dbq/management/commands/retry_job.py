"""``manage.py retry_job <id> [<id> ...] [--from-step PATH]``: run failed jobs again."""

from django.core.management.base import BaseCommand, CommandError

from django_dbq.exceptions import UnknownJob

from ._jobs import find_jobs


class Command(BaseCommand):
    help = (
        "Retry FAILED or CANCELLED jobs from the step where they stopped, or from --from-step "
        "(the dotted path of one of the job's tasks)."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("job_id", nargs="+", help="ids of the jobs to retry")
        parser.add_argument(
            "--from-step",
            "--from_step",
            dest="from_step",
            default=None,
            help="dotted path of the task to start from (default: the step that failed)",
        )

    def handle(self, *args, **options):
        ids = options["job_id"]
        jobs = find_jobs([ids] if isinstance(ids, str) else list(ids))
        from_step = options["from_step"]
        if from_step is not None and (not isinstance(from_step, str) or not from_step):
            raise CommandError(f"--from-step must be the dotted path of a task, not {from_step!r}.")
        # Check every job first so that a bad id or step changes nothing.
        for job in jobs:
            if job.state not in (job.STATES.FAILED, job.STATES.CANCELLED):
                raise CommandError(
                    f"Job {job.pk} is {job.state}; only FAILED or CANCELLED jobs can be retried."
                )
            try:
                tasks = job.definition.tasks
            except UnknownJob as error:
                raise CommandError(f"Job {job.pk}: {error}")
            step = from_step or job.next_task or tasks[0]
            if step not in tasks:
                raise CommandError(
                    f"{'--from-step: ' if from_step else ''}Job {job.pk} ({job.name}) has no "
                    f"step {step!r}; its steps are {', '.join(tasks)}."
                )
        for job in jobs:
            try:
                job.retry(from_step=from_step)
            except ValueError as error:  # changed state since the check above
                raise CommandError(str(error))
            self.stdout.write(f"{job.pk} queued again from {job.next_task}")
