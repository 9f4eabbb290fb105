"""Big cold pages answered before they are merged (issue 9).

A JSON client asking for a project whose merged page is not in memory waits, as a rule,
for the upstream page to be parsed into records, merged, pointed at the proxy and rendered:
some 100k objects for a page of 20k files. When the project has one upstream page, in JSON,
without a file that can be a variant, the served JSON is made instead in the worker process
straight from the upstream's bytes (`proxy.pages.served_json`) and handed to that request
at once; the merged page is made after it as before, for everything else (file routes,
other formats and views). The bytes are the general path's, so a later request for the same
view gets the very same page (and ETag).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from proxy.pages.cache import CachedPage
from proxy.pages.served_json import MadePage
from proxy.simple.api import page_format_of
from proxy.simple.json_pages import read_head, read_piece
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.merged import MergedProject, Merger
from proxy.upstreams.page_loader import LoadedPage
from proxy.urls.join import LinkResolver

# (upstream JSON body, its URL, project, root) -> the served JSON and the page in pieces, or
# None (the general path): `proxy.pages.served_json.served_json_job`, in the worker process.
StraightBuilder = Callable[[bytes, str, str, str], Awaitable[MadePage | None]]
# Smaller pages are made the general way: for them it costs a few ms.
STRAIGHT_MIN_BYTES = 256 * 1024

log = logging.getLogger("variant_proxy.upstreams")


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
    made: tuple[str, MadePage] | None = None  # (digest of the upstream page, what was made)


class StraightPages:
    """The requests waiting for a straight page, one per project, and the pages made."""

    def __init__(self, builder: StraightBuilder, min_bytes: int = STRAIGHT_MIN_BYTES) -> None:
        self._builder = builder
        self._min_bytes = min_bytes
        self._asked: dict[str, _Asked] = {}

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

    async def make(self, project: str, cached: CachedPage) -> bool:
        """Make the served JSON from this upstream page if a request waits for it and the page
        suits; True when made (the page is then known to be well-formed)."""
        asked = self._asked.get(project)
        if (
            asked is None
            or asked.made is not None
            or len(cached.body) < self._min_bytes
            or not page_format_of(cached.content_type).is_json
        ):
            return False
        try:
            made = await self._builder(cached.body, cached.url, project, asked.root)
        except Exception as error:  # the worker died, say: the general path serves the page
            log.warning("straight page of %s not made: %r", project, error)
            return False
        if made is None:
            return False
        asked.made = (cached.digest, made)
        return True

    async def answer(
        self, project: str, loaded: Sequence[LoadedPage], version: str, warnings: tuple[str, ...]
    ) -> MadePage | None:
        """Answer the waiting request: the straight page when these loaded pages are one
        upstream page it was (or can now be) made from, else None (the general path).
        Returns what was made, whose pieces the merged page is then read from."""
        asked = self._asked.get(project)
        if asked is None or asked.answer.done():
            return None
        if len(loaded) == 1 and asked.made is None:
            await self.make(project, loaded[0].cached)
        made = asked.made
        if made is None or len(loaded) != 1 or loaded[0].cached.digest != made[0]:
            self.settle(project)
            return None
        item = loaded[0]
        self.settle(
            project, StraightPage(made[1].served, version, item.fresh_until, item.stale, warnings)
        )
        return made[1]

    def settle(self, project: str, page: StraightPage | None = None) -> None:
        """Hand `page` (None: take the general path) to the waiting request, if any."""
        asked = self._asked.pop(project, None)
        if asked is not None and not asked.answer.done():
            asked.answer.set_result(page)


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
    project: NormalizedName, item: LoadedPage, made: MadePage, warnings: tuple[str, ...]
) -> tuple[ProjectPage, MergedProject]:
    """The upstream page and the merged page read from the worker's pieces, one piece per
    turn of the event loop (about 1 ms each): a thread would hold the GIL against the loop
    for tens of ms at a time (decoding the whole page is one call)."""
    url = item.cached.url
    head = read_head(made.head, url)
    links = LinkResolver(url)
    merger = Merger(has_versions=head.versions is not None)
    files: list[DistFile] = []
    for piece in made.pieces:
        dists = read_piece(piece, len(files), links)
        files.extend(dists)
        merger.add_files(item, dists)
        await asyncio.sleep(0)
    page = replace(head, files=tuple(files))
    merger.add_versions(page)
    return page, merger.merged(project, [(item, page)], warnings)
