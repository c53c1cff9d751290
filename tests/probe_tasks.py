"""Task module that records being imported: creating a job must not import it."""

import os

if os.environ.get("DBQ_IMPORT_PROBE"):
    with open(os.environ["DBQ_IMPORT_PROBE"], "a") as marker:
        marker.write(f"imported in {os.getpid()}\n")


def run(job):
    job.workspace["probe_ran"] = True
