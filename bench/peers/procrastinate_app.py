"""Procrastinate app with no-op tasks (used only inside its own virtualenv).

Procrastinate has no task chains; ``chain_step`` emulates a 3-task chain by
deferring the next step from inside the task, which is how a chain is written
with it.
"""

import os

from benchkit import stamp
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ["PROCRASTINATE_DSN"]))


@app.task(name="noop")
def noop() -> None:
    stamp.hit()


@app.task(name="chain_step")
def chain_step(step: int) -> None:
    stamp.hit()
    if step < 3:
        chain_step.defer(step=step + 1)


@app.task(name="pickup")
def pickup() -> None:
    stamp.record_pickup()
