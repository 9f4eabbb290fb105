"""Big cold JSON pages made in the worker process (`proxy.pages.workers`), in two jobs.

The first job makes the served JSON (`proxy.pages.served_json`) and sends back only that:
the waiting client is answered with it. The upstream page split for reading (some 5 MB for
20k files) stays in the worker until the second job fetches it for the merged page, made
after the answer: sending it with the answer would make the answer wait for it.
"""

from __future__ import annotations

import gc

from proxy.pages.served_json import made_page
from proxy.pages.workers import PageWorkers

# Split pages held in the worker, waiting for their second job; the oldest is dropped (its
# merged page is then made the general way).
HELD_PAGES = 2

# In the worker: token -> (head, pieces) of the pages made, oldest first.
_held: dict[str, tuple[bytes, list[bytes]]] = {}


def served_job(token: str, body: bytes, page_url: str, project: str, root: str) -> bytes | None:
    """The served JSON (`served_json_page`); the page's pieces held under `token`.

    Without the cyclic garbage collector, which the 100k short-lived objects of a big page
    would run a dozen times for nothing (they make no cycles; it runs again after the job)."""
    gc.disable()
    try:
        made = made_page(body, page_url, project, root)
    finally:
        gc.enable()
    if made is None:
        return None
    _held.pop(token, None)
    while len(_held) >= HELD_PAGES:
        del _held[next(iter(_held))]
    _held[token] = (made.head, made.pieces)
    return made.served


def pieces_job(token: str) -> tuple[bytes, list[bytes]] | None:
    """The head and pieces held under `token` (then forgotten); None when not held."""
    return _held.pop(token, None)


class StraightJobs:
    """The two jobs as the server runs them, in its worker process."""

    def __init__(self, workers: PageWorkers) -> None:
        self._workers = workers

    async def served(
        self, token: str, body: bytes, page_url: str, project: str, root: str
    ) -> bytes | None:
        return await self._workers.run(served_job, token, body, page_url, project, root)

    async def pieces(self, token: str) -> tuple[bytes, list[bytes]] | None:
        return await self._workers.run(pieces_job, token)
