"""The seam for a page cache shared between replicas (Redis in a cluster; none alone).

`ProjectPages` asks it when its local copy of a page is missing or stale, and tells it
every page it fetched, so a page one replica fetched is fresh for all of them.
"""

from __future__ import annotations

from typing import Protocol

from proxy.pages.cache import CachedPage


class SharedPages(Protocol):
    async def get(self, key: str) -> CachedPage | None:
        """The page another replica stored under `key`, or None (also when unreachable)."""
        ...

    async def put(self, key: str, page: CachedPage) -> None:
        """Offer a fetched page to the other replicas (failures are logged, not raised)."""
        ...
