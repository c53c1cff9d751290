"""Lookups by job name, kept for code written against django-db-queue 3.x."""

from __future__ import annotations

from .definitions import get_definition


def get_next_task_name(job_name: str, current_task: str | None = None) -> str | None:
    """The task after ``current_task`` in ``job_name``'s chain (the first for None).

    None after the last task.
    """
    return get_definition(job_name).next_task_after(current_task) or None


def get_pre_task_hook_name(job_name: str) -> str | None:
    return get_definition(job_name).pre_task_hook


def get_post_task_hook_name(job_name: str) -> str | None:
    return get_definition(job_name).post_task_hook


def get_failure_hook_name(job_name: str) -> str | None:
    return get_definition(job_name).failure_hook


def get_creation_hook_name(job_name: str) -> str | None:
    return get_definition(job_name).creation_hook
