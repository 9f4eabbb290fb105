"""Big cold pages answered before they are merged (issue 9).

A JSON client asking for a project whose merged page is not in memory waits, as a rule,
for the upstream page to be parsed into records, merged, pointed at the proxy and rendered:
some 100k objects for a page of 20k files. When the project has one upstream page, in JSON,
without a file that can be a variant, the served JSON is made instead in the worker process
straight from the upstream's bytes (`proxy.pages.served_json`) and handed to that request
as soon as it is made, before the page is stored; the merged page is made after it as
before, for everything else (file routes, other formats and views), from the pieces the
worker kept (`proxy.pages.straight_jobs`). The bytes are the general path's, so a later
request for the same view gets the very same page (and ETag).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from proxy.pages.cache import CachedPage
from proxy.simple.api import page_format_of
from proxy.simple.json_pages import read_head, read_piece
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.merged import MergedProject, Merger, version_of
from proxy.upstreams.page_loader import LoadedPage
from proxy.urls.join import LinkResolver

# Smaller pages are made the general way: for them it costs a few ms.
STRAIGHT_MIN_BYTES = 256 * 1024

log = logging.getLogger("variant_proxy.upstreams")


class StraightBuilder(Protocol):
    """Makes straight pages (`proxy.pages.straight_jobs.StraightJobs`, in the worker)."""

    async def served(
        self, token: str, body: bytes, page_url: str, project: str, root: str
    ) -> bytes | None:
        """The served JSON of an upstream JSON page, its split form kept under `token`;
        None when the page is left to the general path."""

    async def pieces(self, token: str) -> tuple[bytes, list[bytes]] | None:
        """The split page kept under `token` (`split_files`: head, pieces), if still kept."""


@dataclass(frozen=True)
class StraightPage:
    """A project's served JSON, and what decides its headers."""

    body: bytes
    version: str  # the version of the merged page it stands for
    fresh_until: float
    stale: bool
    warnings: tuple[str, ...]


@dataclass
class _Asked:
    root: str
    answer: asyncio.Future[StraightPage | None]


class StraightPages:
    """The requests waiting for a straight page, one per project, and the pages made."""

    def __init__(self, builder: StraightBuilder, min_bytes: int = STRAIGHT_MIN_BYTES) -> None:
        self._builder = builder
        self._min_bytes = min_bytes
        self._asked: dict[str, _Asked] = {}
        # project -> digest of the upstream page made straight, whose pieces the worker keeps
        self._made: dict[str, str] = {}

    def ask(self, project: str, root: str) -> asyncio.Future[StraightPage | None] | None:
        """Wait for the project's straight page with files at `root`; None when a request
        with another root already waits (this one takes the general path)."""
        asked = self._asked.get(project)
        if asked is None:
            answer = asyncio.get_running_loop().create_future()
            asked = self._asked[project] = _Asked(root, answer)
        return asked.answer if asked.root == root else None

    async def wait(
        self, project: str, root: str, refresh: Callable[[], asyncio.Future[Any]]
    ) -> StraightPage | None:
        """The straight page of `project` with files at `root` as soon as the refresh that
        `refresh()` starts (or joins) makes it; None when that refresh makes the page the
        general way (then done, or its error raised here)."""
        answer = self.ask(project, root)
        if answer is None:
            return None
        try:
            return await _first_of(answer, refresh())
        finally:
            self.withdraw(project, answer)

    def withdraw(self, project: str, answer: asyncio.Future[StraightPage | None]) -> None:
        """Forget a request that the page's refresh did not answer (it ran past the point)."""
        asked = self._asked.get(project)
        if asked is not None and asked.answer is answer:
            del self._asked[project]
        answer.cancel()

    async def make(self, project: str, item: LoadedPage, warnings: tuple[str, ...] = ()) -> bool:
        """Make the served JSON from this loaded page, the project's only one, if a request
        waits for it and the page suits, and answer that request at once; True when made
        (the page is then known to be well-formed)."""
        asked = self._asked.get(project)
        cached = item.cached
        if asked is None or asked.answer.done() or not self._suits(cached):
            return False
        token = _token(project, cached.digest)
        try:
            served = await self._builder.served(token, cached.body, cached.url, project, asked.root)
        except Exception as error:  # the worker died, say: the general path serves the page
            log.warning("straight page of %s not made: %r", project, error)
            return False
        if served is None:
            return False
        self._made[project] = cached.digest
        page = StraightPage(served, version_of([item]), item.fresh_until, item.stale, warnings)
        self.settle(project, page)
        return True

    def _suits(self, cached: CachedPage) -> bool:
        return len(cached.body) >= self._min_bytes and page_format_of(cached.content_type).is_json

    async def pieces(
        self, project: str, loaded: Sequence[LoadedPage], warnings: tuple[str, ...]
    ) -> tuple[bytes, list[bytes]] | None:
        """The split upstream page to read the merged page from, when these loaded pages are
        the one page made straight (made now if a request still waits for it); None: the
        general path. A request still waiting is then told to take the general path."""
        if len(loaded) == 1 and self._made.get(project) != loaded[0].cached.digest:
            await self.make(project, loaded[0], warnings)
        self.settle(project)
        digest = self._made.pop(project, None)
        if digest is None or len(loaded) != 1 or loaded[0].cached.digest != digest:
            return None
        try:
            return await self._builder.pieces(_token(project, digest))
        except Exception as error:  # the worker died: the general path makes the page
            log.warning("straight page of %s not read: %r", project, error)
            return None

    def settle(self, project: str, page: StraightPage | None = None) -> None:
        """Hand `page` (None: take the general path) to the waiting request, if any."""
        asked = self._asked.pop(project, None)
        if asked is not None and not asked.answer.done():
            asked.answer.set_result(page)

    def finish(self, project: str) -> None:
        """The project's refresh is over: a request not answered takes the general path."""
        self.settle(project)
        self._made.pop(project, None)


def _token(project: str, digest: str) -> str:
    return f"{project} {digest}"


async def _first_of(
    answer: asyncio.Future[StraightPage | None], refresh: asyncio.Future[Any]
) -> StraightPage | None:
    """The straight page as soon as it is made; None once the refresh is done without one
    (its error raised). Neither is cancelled when the caller is."""
    await asyncio.wait((answer, refresh), return_when=asyncio.FIRST_COMPLETED)
    if answer.done() and not answer.cancelled() and answer.result() is not None:
        return answer.result()
    await asyncio.shield(refresh)
    return None


async def merge_in_steps(
    project: NormalizedName,
    item: LoadedPage,
    split: tuple[bytes, list[bytes]],
    warnings: tuple[str, ...],
) -> tuple[ProjectPage, MergedProject]:
    """The upstream page and the merged page read from the worker's pieces, one piece per
    turn of the event loop (about 1 ms each): a thread would hold the GIL against the loop
    for tens of ms at a time (decoding the whole page is one call)."""
    url = item.cached.url
    head_bytes, pieces = split
    head = read_head(head_bytes, url)
    links = LinkResolver(url)
    merger = Merger(has_versions=head.versions is not None)
    files: list[DistFile] = []
    for piece in pieces:
        dists = read_piece(piece, len(files), links)
        files.extend(dists)
        merger.add_files(item, dists)
        await asyncio.sleep(0)
    page = replace(head, files=tuple(files))
    merger.add_versions(page)
    return page, merger.merged(project, [(item, page)], warnings)
