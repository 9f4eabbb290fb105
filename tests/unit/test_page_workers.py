"""The worker process of big pages: runs jobs, and leaves when the server that started it
is killed outright (it cannot be shut down then)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from proxy.pages.workers import PageWorkers

SERVER = """
import asyncio, os
from proxy.pages.workers import PageWorkers

async def main():
    workers = PageWorkers()
    print(await workers.run(os.getpid), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie nobody reaped is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def test_a_job_runs_in_another_process() -> None:
    workers = PageWorkers()
    try:
        assert await workers.run(os.getpid) != os.getpid()
    finally:
        workers.close()


def test_the_worker_leaves_when_its_server_is_killed() -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    assert server.stdout is not None
    worker = int(server.stdout.readline())
    assert running(worker)
    server.kill()
    server.wait()
    deadline = time.monotonic() + 30
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(worker)
