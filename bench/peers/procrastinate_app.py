"""Procrastinate app with no-op tasks (used only inside its own virtualenv).

Procrastinate has no task chains; ``chain_step`` emulates a 3-task chain by
deferring the next step from inside the task, which is how a chain is written
with it. The tasks are coroutines: Procrastinate's worker is asyncio-based and
runs a sync task in a thread, so async tasks are its fastest path. ``io_wait``
is the ``io`` scenario's job: it waits without using the CPU.
"""

import asyncio
import os

from benchkit import stamp
from benchkit.iowait import IO_WAIT_SECONDS
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ["PROCRASTINATE_DSN"]))


@app.task(name="noop")
async def noop() -> None:
    stamp.hit()


@app.task(name="chain_step")
async def chain_step(step: int) -> None:
    stamp.hit()
    if step < 3:
        await chain_step.defer_async(step=step + 1)


@app.task(name="pickup")
async def pickup() -> None:
    stamp.record_pickup()


@app.task(name="io_wait")
async def io_wait() -> None:
    stamp.hit()
    await asyncio.sleep(IO_WAIT_SECONDS)
