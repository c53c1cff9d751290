"""The demo's tasks: each receives the job and passes data on through ``job.workspace``."""

import collections
import os


def stamp_request(job):
    job.workspace.setdefault("requested_by", "demo")


def count_words(job):
    words = job.workspace["text"].lower().split()
    job.workspace["counts"] = dict(collections.Counter(words).most_common(3))
    job.workspace["counted_by_pid"] = os.getpid()


def summarise(job):
    top = ", ".join(f"{word} x{count}" for word, count in job.workspace["counts"].items())
    job.workspace["summary"] = f"top words: {top}"
