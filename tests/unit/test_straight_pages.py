"""Big cold JSON pages answered straight from the worker process: the bytes of the general
path, the merged page made afterwards the same as the general path's, and every page that
does not suit left to the general path. Real loopback upstreams, a real worker process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.config import UpstreamSettings
from proxy.pages.cache import CachedPage, PageCache
from proxy.pages.straight_jobs import StraightJobs
from proxy.pages.workers import PageWorkers
from proxy.pipeline import SubsetCache, with_proxy_links
from proxy.simple.json_pages import render_project_json
from proxy.simple.names import NormalizedName
from proxy.upstreams.http import Upstream
from proxy.upstreams.projects import MergedProject, ProjectPages
from proxy.upstreams.source import UpstreamError
from proxy.upstreams.straight_pages import StraightBuilder
from proxy.upstreams.variant_metadata import NO_VARIANTS

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
PKG = NormalizedName("pkg")
FILES = 3000  # some 700 kB: a big page


def entry(number: int, name: str | None = None) -> dict[str, Any]:
    filename = name or f"pkg-1.{number}.tar.gz"
    return {
        "filename": filename,
        "url": f"../../files/{filename}",
        "hashes": {"sha256": hashlib.sha256(filename.encode()).hexdigest()} if number % 3 else {},
        "requires-python": ">=3.8",
        "size": number,
        "upload-time": "2024-01-01T00:00:00Z",
        "core-metadata": False,
        "yanked": "broken" if number == 7 else False,
    }


class Upstreams:
    """Two loopback indexes serving JSON pages as set; counts the page requests."""

    def __init__(self) -> None:
        self.pages: dict[str, dict[str, bytes]] = {"a": {}, "b": {}}
        self.requests: list[str] = []

    def app(self, name: str) -> web.Application:
        async def page(request: web.Request) -> web.Response:
            self.requests.append(name)
            body = self.pages[name].get(request.match_info["project"])
            if body is None:
                raise web.HTTPNotFound()
            return web.Response(body=body, content_type=JSON_TYPE)

        app = web.Application()
        app.router.add_get("/simple/{project}/", page)
        return app


def document(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "pkg", "files": entries}).encode()


@pytest.fixture
async def workers() -> AsyncIterator[PageWorkers]:
    pool = PageWorkers()
    yield pool
    pool.close()


@pytest.fixture
async def make(
    aiohttp_server: AiohttpServer, tmp_path: Path, workers: PageWorkers
) -> AsyncIterator[tuple[Upstreams, Callable[..., ProjectPages]]]:
    upstreams = Upstreams()
    servers = {name: await aiohttp_server(upstreams.app(name)) for name in ("a", "b")}
    caches: list[PageCache] = []

    async with aiohttp.ClientSession() as session:

        def make_pages(
            *names: str,
            straight_pages: bool = True,
            builder: StraightBuilder | None = None,
            cache_type: type[PageCache] = PageCache,
        ) -> ProjectPages:
            cache = cache_type(tmp_path / f"pages{len(caches)}")
            caches.append(cache)
            sources = [
                Upstream(
                    UpstreamSettings(n, str(servers[n].make_url("/simple/")), 100, timeout=5),
                    session,
                    environ={},
                )
                for n in names or ("a",)
            ]
            if builder is None and straight_pages:
                builder = StraightJobs(workers)
            return ProjectPages(sources, cache, {}, straight_builder=builder)

        yield upstreams, make_pages
    for cache in caches:
        cache.close()


def located(merged: MergedProject) -> dict[str, object]:
    return {ident: (where.dist, where.upstream.name) for ident, where in merged.files.items()}


def served(merged: MergedProject, root: str) -> bytes:
    """What the general path serves in JSON for a page without variant files."""
    return render_project_json(with_proxy_links(merged.page, root, SubsetCache(), NO_VARIANTS, {}))


async def test_a_big_cold_page_is_answered_straight_with_the_general_paths_bytes(
    make: tuple[Upstreams, Callable[..., ProjectPages]],
) -> None:
    upstreams, make_pages = make
    upstreams.pages["a"]["pkg"] = document([entry(n) for n in range(FILES)])
    pages = make_pages()
    straight = await pages.get_straight(PKG, "../../")
    assert straight is not None
    general = await make_pages(straight_pages=False).get(PKG)
    assert straight.body == served(general, "../../")
    assert straight.version == general.version and straight.stale is False
    # The merged page, read afterwards from the worker's pieces, is the general path's.
    merged = await pages.get(PKG)
    assert merged.page == general.page
    assert located(merged) == located(general)
    assert merged.version == general.version
    assert upstreams.requests == ["a", "a"]  # one each: the merged page came from the pieces
    # Warm: the general path (None), from memory.
    assert await pages.get_straight(PKG, "../../") is None


async def test_pages_that_do_not_suit_are_left_to_the_general_path(
    make: tuple[Upstreams, Callable[..., ProjectPages]],
) -> None:
    upstreams, make_pages = make
    big = [entry(n) for n in range(FILES)]
    variant = entry(1, "pkg-1.1-cp312-cp312-linux_x86_64-x86v3.whl")
    upstreams.pages["a"].update(
        {
            "pkg": document([*big, variant]),  # a file that may be a variant
            "small": document(big[:10]),
            "two": document(big),
        }
    )
    upstreams.pages["b"]["two"] = document([entry(FILES + 1)])  # a second upstream lists it
    pages = make_pages("a", "b")
    for name in ("pkg", "small", "two"):
        project = NormalizedName(name)
        assert await pages.get_straight(project, "../../") is None
        assert (await pages.get(project)).page.files  # the general path made it


async def test_a_malformed_big_page_fails_as_in_the_general_path(
    make: tuple[Upstreams, Callable[..., ProjectPages]],
) -> None:
    upstreams, make_pages = make
    bad = [entry(n) for n in range(FILES)]
    bad[5]["size"] = -1
    upstreams.pages["a"]["pkg"] = document(bad)
    with pytest.raises(UpstreamError, match=r"malformed page.*files\[5\].*size is -1"):
        await make_pages().get_straight(PKG, "../../")


class SlowStore(PageCache):
    """A page cache whose writes wait until the test lets them through."""

    let_through = threading.Event()

    def put(self, key: str, page: CachedPage) -> None:
        assert self.let_through.wait(timeout=10)
        super().put(key, page)


async def test_the_straight_page_is_answered_before_the_page_is_stored(
    make: tuple[Upstreams, Callable[..., ProjectPages]],
) -> None:
    upstreams, make_pages = make
    upstreams.pages["a"]["pkg"] = document([entry(n) for n in range(FILES)])
    SlowStore.let_through.clear()
    pages = make_pages(cache_type=SlowStore)
    try:
        straight = await asyncio.wait_for(pages.get_straight(PKG, "../../"), timeout=5)
    finally:
        SlowStore.let_through.set()
    assert straight is not None
    general = await make_pages(straight_pages=False).get(PKG)
    assert straight.body == served(general, "../../")
    merged = await pages.get(PKG)
    assert merged.page == general.page
    assert pages.peek(PKG) is merged


class PiecesDropped:
    """The worker's jobs, as when it dropped the page's pieces (other big pages came first)."""

    def __init__(self, jobs: StraightJobs) -> None:
        self.jobs = jobs

    async def served(
        self, token: str, body: bytes, page_url: str, project: str, root: str
    ) -> bytes | None:
        return await self.jobs.served(token, body, page_url, project, root)

    async def pieces(self, token: str) -> tuple[bytes, list[bytes]] | None:
        return None


async def test_without_the_pieces_the_merged_page_is_made_the_general_way(
    make: tuple[Upstreams, Callable[..., ProjectPages]], workers: PageWorkers
) -> None:
    upstreams, make_pages = make
    upstreams.pages["a"]["pkg"] = document([entry(n) for n in range(FILES)])
    pages = make_pages(builder=PiecesDropped(StraightJobs(workers)))
    straight = await pages.get_straight(PKG, "../../")
    assert straight is not None
    general = await make_pages(straight_pages=False).get(PKG)
    assert straight.body == served(general, "../../")
    merged = await pages.get(PKG)
    assert merged.page == general.page and located(merged) == located(general)
    assert upstreams.requests == ["a", "a"]  # from the fetched page, not fetched again
