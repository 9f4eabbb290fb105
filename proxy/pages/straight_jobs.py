"""Big cold JSON pages made in the worker process (`proxy.pages.workers`), in two jobs.

The first job makes the served JSON (`proxy.pages.served_json`) and hands back only that:
the waiting client is answered with it. The upstream page split for reading (some 5 MB for
20k files) stays in the worker until the second job fetches it for the merged page, made
after the answer: sending it with the answer would make the answer wait for it.

The upstream page goes to the worker, and the served JSON comes back, through a temporary
file the server names, not through the pool's pipes: 7 MB through a pipe took 15-30 ms on
the one core the two processes share (pickled, then read in 64 kB pieces, a switch each),
written and read through the file 3-4 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from proxy.pages.served_json import decoded_page, made_from
from proxy.pages.workers import PageWorkers

# Split pages held in the worker, waiting for their second job; the oldest is dropped (its
# merged page is then made the general way).
HELD_PAGES = 2

# In the worker: token -> (head, pieces) of the pages made, oldest first.
_held: dict[str, tuple[bytes, list[bytes]]] = {}
# In the worker: the last page's decoded document, freed when the next job starts.
_to_free: list[object] = []


def served_job(token: str, page_file: str, page_url: str, project: str, root: str) -> bool:
    """The served JSON (`served_json_page`) of the upstream page in the file `page_file`,
    written over it, the page's pieces held under `token`; False (the file as it was) when
    the general path makes the page.

    Without the cyclic garbage collector, which the 100k short-lived objects of a big page
    would run a dozen times for nothing (they make no cycles; it runs again after the job);
    and the page's objects are freed when the next job starts (the pieces' one, after the
    answer), not before this job ends: freeing them takes some 5 ms."""
    _to_free.clear()
    gc.disable()
    try:
        document = decoded_page(Path(page_file).read_bytes())
        made = None if document is None else made_from(document, page_url, project, root)
    finally:
        gc.enable()
    _to_free.append(document)
    if made is None:
        return False
    _held.pop(token, None)
    while len(_held) >= HELD_PAGES:
        del _held[next(iter(_held))]
    _held[token] = (made.head, made.pieces)
    _write_over(page_file, made.served)
    return True


def _write_over(page_file: str, data: bytes) -> None:
    """Replace the file's bytes; never create it: a server that gave up on the job (shut
    down, say) removed it, and a new one would be left behind."""
    with open(page_file, "r+b") as out:
        out.write(data)
        out.truncate()


def pieces_job(token: str) -> tuple[bytes, list[bytes]] | None:
    """The head and pieces held under `token` (then forgotten); None when not held."""
    _to_free.clear()
    return _held.pop(token, None)


class StraightJobs:
    """The two jobs as the server runs them, in its worker process."""

    def __init__(self, workers: PageWorkers, folder: Path | None = None) -> None:
        self._workers = workers
        self._folder = folder  # of the jobs' files; None: the system's temporary folder

    async def served(
        self, token: str, body: bytes, page_url: str, project: str, root: str
    ) -> bytes | None:
        with _job_file(self._folder) as page_file:
            await asyncio.to_thread(page_file.write_bytes, body)
            made = await self._workers.run(
                served_job, token, str(page_file), page_url, project, root
            )
            return await asyncio.to_thread(_taken, page_file) if made else None

    async def pieces(self, token: str) -> tuple[bytes, list[bytes]] | None:
        return await self._workers.run(pieces_job, token)


def _taken(page_file: Path) -> bytes:
    """The file's bytes, the file removed (freeing 7 MB of page cache takes ms: not on the
    event loop)."""
    served = page_file.read_bytes()
    page_file.unlink()
    return served


@contextlib.contextmanager
def _job_file(folder: Path | None) -> Iterator[Path]:
    """An empty temporary file for a job's page, removed afterwards whatever happened."""
    handle, name = tempfile.mkstemp(prefix="variant-proxy-page-", suffix=".json", dir=folder)
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
