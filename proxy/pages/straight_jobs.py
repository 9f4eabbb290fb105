"""Big cold JSON pages made in the worker process (`proxy.pages.workers`), in two jobs.

The first job makes the served JSON (`proxy.pages.served_json`) and hands back only that:
the waiting client is answered with it. The upstream page split for reading (some 5 MB for
20k files) stays in the worker until the second job fetches it for the merged page, made
after the answer: sending it with the answer would make the answer wait for it.

The served JSON comes back through a temporary file the server names, not through the
pool's result pipe: 7 MB through the pipe took 15-30 ms on one core (pickled, then read in
64 kB pieces by the pool's thread), written and read through the file 3-4 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from proxy.pages.served_json import made_page
from proxy.pages.workers import PageWorkers

# Split pages held in the worker, waiting for their second job; the oldest is dropped (its
# merged page is then made the general way).
HELD_PAGES = 2

# In the worker: token -> (head, pieces) of the pages made, oldest first.
_held: dict[str, tuple[bytes, list[bytes]]] = {}


def served_job(token: str, body: bytes, page_url: str, project: str, root: str, out: str) -> bool:
    """The served JSON (`served_json_page`) written to the file `out`, the page's pieces
    held under `token`; False (nothing written) when the general path makes the page.

    Without the cyclic garbage collector, which the 100k short-lived objects of a big page
    would run a dozen times for nothing (they make no cycles; it runs again after the job)."""
    gc.disable()
    try:
        made = made_page(body, page_url, project, root)
    finally:
        gc.enable()
    if made is None:
        return False
    _held.pop(token, None)
    while len(_held) >= HELD_PAGES:
        del _held[next(iter(_held))]
    _held[token] = (made.head, made.pieces)
    Path(out).write_bytes(made.served)
    return True


def pieces_job(token: str) -> tuple[bytes, list[bytes]] | None:
    """The head and pieces held under `token` (then forgotten); None when not held."""
    return _held.pop(token, None)


class StraightJobs:
    """The two jobs as the server runs them, in its worker process."""

    def __init__(self, workers: PageWorkers, result_dir: Path | None = None) -> None:
        self._workers = workers
        self._result_dir = result_dir  # None: the system's temporary folder

    async def served(
        self, token: str, body: bytes, page_url: str, project: str, root: str
    ) -> bytes | None:
        with _result_file(self._result_dir) as out:
            made = await self._workers.run(
                served_job, token, body, page_url, project, root, str(out)
            )
            return await asyncio.to_thread(out.read_bytes) if made else None

    async def pieces(self, token: str) -> tuple[bytes, list[bytes]] | None:
        return await self._workers.run(pieces_job, token)


@contextlib.contextmanager
def _result_file(folder: Path | None) -> Iterator[Path]:
    """An empty temporary file for a job's result, removed afterwards whatever happened."""
    handle, name = tempfile.mkstemp(prefix="variant-proxy-page-", suffix=".json", dir=folder)
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
