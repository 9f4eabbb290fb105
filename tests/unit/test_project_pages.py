"""Project pages through the page cache from real loopback upstreams: priority merge, pins,
TTL, revalidation with 304, stale pages when an upstream fails, 404 memory, invalidation and
single flight. Time is the injected clock; nothing sleeps."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.config import UpstreamSettings
from proxy.pages.cache import PageCache, cache_key
from proxy.simple.api import parse_project_index
from proxy.upstreams.http import Upstream
from proxy.upstreams.page_loader import NOT_FOUND_TTL
from proxy.upstreams.projects import MergedProject, ProjectNotFound, ProjectPages
from proxy.upstreams.source import UpstreamError
from proxy.urls.links import file_id

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Listing:
    filename: str
    digest: str  # stands for the file's bytes


@dataclass
class FakeIndex:
    """A simple index on loopback: JSON or HTML pages with ETags, and a log of what it did."""

    html: bool = False
    projects: dict[str, list[Listing]] = field(default_factory=dict)
    index_names: list[str] = field(default_factory=list)
    failing: int | None = None  # answer every request with this status
    garbage: bool = False  # answer 200 with a body that is no simple page
    gate: asyncio.Event | None = None  # when set, page requests wait for it
    log: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, INM, status

    def requests_for(self, project: str) -> list[tuple[str, str | None, int]]:
        return [entry for entry in self.log if entry[0] == f"/simple/{project}/"]

    def body(self, project: str) -> tuple[bytes, str]:
        files = self.projects[project]
        if self.html:
            links = "".join(
                f'<a href="/files/{html.escape(f.filename)}#sha256={f.digest}">'
                f"{html.escape(f.filename)}</a>\n"
                for f in files
            )
            page = f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{links}</body></html>"
            return page.encode(), "text/html; charset=utf-8"
        document = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": [
                {
                    "filename": f.filename,
                    "url": f"/files/{f.filename}",
                    "hashes": {"sha256": f.digest},
                }
                for f in files
            ],
            "versions": sorted({f.filename.split("-")[1].removesuffix(".tar.gz") for f in files}),
        }
        return json.dumps(document).encode(), JSON_TYPE

    async def project_page(self, request: web.Request) -> web.Response:
        if self.gate is not None:
            await self.gate.wait()
        return self._answer(request, request.match_info["project"])

    async def root_page(self, request: web.Request) -> web.Response:
        return self._answer(request, None)

    def _answer(self, request: web.Request, project: str | None) -> web.Response:
        validator = request.headers.get("If-None-Match")

        def logged(response: web.Response) -> web.Response:
            self.log.append((request.path, validator, response.status))
            return response

        if self.failing is not None:
            return logged(web.Response(status=self.failing, text="upstream trouble"))
        if self.garbage:
            return logged(web.Response(body=b"\x00 not a page", content_type=JSON_TYPE))
        if project is None:
            projects = [{"name": name} for name in self.index_names]
            body = json.dumps({"meta": {"api-version": "1.1"}, "projects": projects}).encode()
            content_type = JSON_TYPE
        elif project not in self.projects:
            return logged(web.Response(status=404, text="no such project"))
        else:
            body, content_type = self.body(project)
        etag = f'"{sha(body.decode())[:16]}"'
        if validator == etag:
            return logged(web.Response(status=304, headers={"ETag": etag}))
        response = web.Response(body=body, headers={"ETag": etag, "Content-Type": content_type})
        return logged(response)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/simple/", self.root_page)
        app.router.add_get("/simple/{project}/", self.project_page)
        return app


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    a: FakeIndex
    b: FakeIndex
    servers: dict[str, TestServer]
    clock: Clock
    make: Callable[..., ProjectPages]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def setup(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[Setup]:
    a = FakeIndex()
    b = FakeIndex(html=True)
    server_a = await aiohttp_server(a.app())
    server_b = await aiohttp_server(b.app())
    clock = Clock()
    caches: list[PageCache] = []

    def make(
        *,
        ttl_a: float = 100,
        ttl_b: float = 100,
        pins: dict[str, str] | None = None,
        serve_stale: bool = True,
        cache_dir: Path | None = None,
        checked_since: float = -math.inf,
    ) -> ProjectPages:
        cache = PageCache(cache_dir or tmp_path / f"pages{len(caches)}")
        caches.append(cache)
        upstreams = [
            Upstream(
                UpstreamSettings("a", str(server_a.make_url("/simple/")), ttl_a, timeout=5),
                session,
                environ={},
            ),
            Upstream(
                UpstreamSettings("b", str(server_b.make_url("/simple/")), ttl_b, timeout=5),
                session,
                environ={},
            ),
        ]
        return ProjectPages(
            upstreams,
            cache,
            pins or {},
            serve_stale=serve_stale,
            clock=clock,
            checked_since=checked_since,
        )

    yield Setup(a, b, {"a": server_a, "b": server_b}, clock, make)
    for cache in caches:
        cache.close()


def filenames(merged: MergedProject) -> list[str]:
    return [d.filename for d in merged.page.files]


def publish(index: FakeIndex, project: str, *names: str) -> None:
    index.projects[project] = [Listing(name, sha(f"{id(index)}/{name}")) for name in names]


# --- merging in priority order and pins ----------------------------------------------------


async def test_pages_of_two_upstreams_merge_in_priority_order(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz", "pkg-1.0-py3-none-any.whl")
    publish(setup.b, "pkg", "pkg-0.9.tar.gz", "pkg-1.0.tar.gz", "pkg-1.1.tar.gz")
    pages = setup.make()
    merged = await pages.get("pkg")
    assert merged.name == "pkg"
    assert filenames(merged) == [
        "pkg-1.0.tar.gz",
        "pkg-1.0-py3-none-any.whl",
        "pkg-0.9.tar.gz",
        "pkg-1.1.tar.gz",
    ]
    by_name = {d.filename: d for d in merged.page.files}
    # the file both list is the higher-priority upstream's entry
    assert by_name["pkg-1.0.tar.gz"].hashes == {"sha256": setup.a.projects["pkg"][0].digest}
    assert by_name["pkg-1.0.tar.gz"].url.startswith(str(setup.servers["a"].make_url("/")))
    assert by_name["pkg-1.1.tar.gz"].url.startswith(str(setup.servers["b"].make_url("/")))
    # every listed file is located at the upstream that listed it, by its file id
    assert {fid: located.upstream.name for fid, located in merged.files.items()} == {
        file_id(by_name["pkg-1.0.tar.gz"]): "a",
        file_id(by_name["pkg-1.0-py3-none-any.whl"]): "a",
        file_id(by_name["pkg-0.9.tar.gz"]): "b",
        file_id(by_name["pkg-1.1.tar.gz"]): "b",
    }
    assert all(merged.files[file_id(d)].dist == d for d in merged.page.files)
    assert merged.stale is False
    assert merged.warnings == ()
    assert merged.version.startswith("a:") and "+b:" in merged.version


async def test_merged_versions_cover_every_listed_file(setup: Setup) -> None:
    # PEP 700: every listed file MUST be associated with one of the versions in `versions`.
    # Upstream a serves PEP 691 JSON with `versions`, upstream b PEP 503 HTML without.
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    publish(setup.b, "pkg", "pkg-0.9.tar.gz", "pkg-1.1.tar.gz")
    merged = await setup.make().get("pkg")
    assert filenames(merged) == ["pkg-1.0.tar.gz", "pkg-0.9.tar.gz", "pkg-1.1.tar.gz"]
    if merged.page.versions is not None:
        assert set(merged.page.versions) >= {"1.0", "0.9", "1.1"}


async def test_versions_of_two_json_upstreams_are_merged(setup: Setup) -> None:
    setup.b.html = False
    publish(setup.a, "pkg", "pkg-1.0.tar.gz", "pkg-1.1.tar.gz")
    publish(setup.b, "pkg", "pkg-0.9.tar.gz", "pkg-1.0.tar.gz")
    merged = await setup.make().get("pkg")
    assert merged.page.versions is not None
    assert sorted(merged.page.versions) == ["0.9", "1.0", "1.1"]
    assert len(merged.page.versions) == 3


async def test_project_only_one_upstream_has(setup: Setup) -> None:
    publish(setup.b, "only-b", "only_b-2.0.tar.gz")
    merged = await setup.make().get("only-b")
    assert filenames(merged) == ["only_b-2.0.tar.gz"]
    assert [s for _, _, s in setup.a.requests_for("only-b")] == [404]


async def test_pinned_project_comes_from_its_upstream_only(setup: Setup) -> None:
    publish(setup.a, "secret-lib", "secret_lib-9.9.tar.gz")  # a would shadow it
    publish(setup.b, "secret-lib", "secret_lib-1.0.tar.gz")
    publish(setup.a, "other", "other-1.0.tar.gz")
    publish(setup.b, "other", "other-2.0.tar.gz")
    pages = setup.make(pins={"secret-lib": "b"})
    assert [u.name for u in pages.upstreams_for("secret-lib")] == ["b"]
    assert filenames(await pages.get("secret-lib")) == ["secret_lib-1.0.tar.gz"]
    assert setup.a.requests_for("secret-lib") == []
    assert filenames(await pages.get("other")) == ["other-1.0.tar.gz", "other-2.0.tar.gz"]


async def test_pinned_project_missing_from_its_upstream_is_not_found(setup: Setup) -> None:
    publish(setup.a, "secret-lib", "secret_lib-9.9.tar.gz")
    pages = setup.make(pins={"secret-lib": "b"})
    with pytest.raises(ProjectNotFound):
        await pages.get("secret-lib")
    assert setup.a.requests_for("secret-lib") == []


# --- TTL and revalidation ------------------------------------------------------------------


async def test_fresh_page_is_served_without_asking_upstream(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    publish(setup.b, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=100, ttl_b=100)
    first = await pages.get("pkg")
    setup.clock.now += 99
    again = await pages.get("pkg")
    assert again.version == first.version
    assert len(setup.a.requests_for("pkg")) == 1
    assert len(setup.b.requests_for("pkg")) == 1


async def test_after_ttl_the_page_is_revalidated_and_304_keeps_the_version(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=100)
    first = await pages.get("pkg")
    setup.clock.now += 101
    again = await pages.get("pkg")
    requests = setup.a.requests_for("pkg")
    assert [status for _, _, status in requests] == [200, 304]
    assert requests[1][1] is not None  # the second request carried If-None-Match
    assert again.version == first.version
    assert again.page is first.page  # reused as it was: nothing parsed or merged again
    assert again.stale is False
    assert again.fresh_until == setup.clock.now + 100


async def test_a_304_is_kept_without_writing_the_body_again_and_survives_a_restart(
    setup: Setup, tmp_path: Path
) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=100, cache_dir=tmp_path / "kept")
    await pages.get("pkg")
    key = cache_key("project", "a", "pkg")
    stored = pages._cache._disk.get(key)
    setup.clock.now += 101
    await pages.get("pkg")  # revalidated: 304
    assert pages._cache._disk.get(key) == stored  # the body entry as it was written
    restarted = setup.make(ttl_a=100, cache_dir=tmp_path / "kept")
    await restarted.get("pkg")  # fresh from the revalidation: no request upstream
    assert [status for _, _, status in setup.a.requests_for("pkg")] == [200, 304]


async def test_ttl_zero_revalidates_on_every_request_with_304(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=0, ttl_b=0)
    first = await pages.get("pkg")
    second = await pages.get("pkg")
    third = await pages.get("pkg")
    assert [status for _, _, status in setup.a.requests_for("pkg")] == [200, 304, 304]
    assert first.version == second.version == third.version
    assert third.page == first.page


async def test_a_page_asked_about_before_checked_since_is_revalidated_once(
    setup: Setup, tmp_path: Path
) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    publish(setup.b, "pkg", "pkg-1.0.tar.gz")
    await setup.make(ttl_a=1000, ttl_b=1000, cache_dir=tmp_path / "kept").get("pkg")
    setup.clock.now += 10  # well within the TTL
    publish(setup.a, "pkg", "pkg-1.0.tar.gz", "pkg-2.0.tar.gz")
    since = setup.clock.now
    run = setup.make(ttl_a=1000, ttl_b=1000, cache_dir=tmp_path / "kept", checked_since=since)
    assert filenames(await run.get("pkg")) == ["pkg-1.0.tar.gz", "pkg-2.0.tar.gz"]
    setup.clock.now += 10
    # No memo here: the page cache alone says both pages were asked about since `since`.
    same_run = setup.make(ttl_a=1000, ttl_b=1000, cache_dir=tmp_path / "kept", checked_since=since)
    await same_run.get("pkg")
    assert [status for _, _, status in setup.a.requests_for("pkg")] == [200, 200]
    assert [status for _, _, status in setup.b.requests_for("pkg")] == [200, 304]


async def test_changed_upstream_page_gives_a_new_version(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=10)
    first = await pages.get("pkg")
    publish(setup.a, "pkg", "pkg-1.0.tar.gz", "pkg-1.1.tar.gz")
    setup.clock.now += 5
    assert filenames(await pages.get("pkg")) == ["pkg-1.0.tar.gz"]  # still fresh
    setup.clock.now += 6
    changed = await pages.get("pkg")
    assert filenames(changed) == ["pkg-1.0.tar.gz", "pkg-1.1.tar.gz"]
    assert changed.version != first.version
    assert [status for _, _, status in setup.a.requests_for("pkg")] == [200, 200]


async def test_each_upstream_is_refreshed_on_its_own_ttl(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    publish(setup.b, "pkg", "pkg-0.9.tar.gz")
    pages = setup.make(ttl_a=10, ttl_b=1000)
    first = await pages.get("pkg")
    assert first.fresh_until == setup.clock.now + 10
    setup.clock.now += 11
    await pages.get("pkg")
    assert len(setup.a.requests_for("pkg")) == 2
    assert len(setup.b.requests_for("pkg")) == 1


async def test_cached_pages_survive_a_restart_and_are_revalidated(
    setup: Setup, tmp_path: Path
) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    first = await setup.make(ttl_a=10, cache_dir=tmp_path / "shared").get("pkg")
    setup.clock.now += 11
    restarted = setup.make(ttl_a=10, cache_dir=tmp_path / "shared")
    again = await restarted.get("pkg")
    assert again.version == first.version
    assert [status for _, _, status in setup.a.requests_for("pkg")] == [200, 304]


# --- upstream failures ---------------------------------------------------------------------


async def test_upstream_down_serves_the_cached_page_as_stale(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=10)
    first = await pages.get("pkg")
    await setup.servers["a"].close()
    setup.clock.now += 11
    stale = await pages.get("pkg")
    assert stale.stale is True
    assert stale.page == first.page
    assert stale.version == first.version
    assert stale.fresh_until > setup.clock.now  # not asked again on every request


async def test_upstream_5xx_serves_the_cached_page_as_stale_then_recovers(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=10)
    first = await pages.get("pkg")
    setup.a.failing = 503
    setup.clock.now += 11
    stale = await pages.get("pkg")
    assert stale.stale is True
    assert stale.page == first.page
    setup.a.failing = None
    setup.clock.now += NOT_FOUND_TTL + 11
    recovered = await pages.get("pkg")
    assert recovered.stale is False
    assert recovered.page == first.page


async def test_upstream_down_without_a_cached_page_raises(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    setup.a.failing = 502
    with pytest.raises(UpstreamError):
        await setup.make().get("pkg")


async def test_serve_stale_off_raises_instead(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=10, serve_stale=False)
    await pages.get("pkg")
    setup.a.failing = 503
    setup.clock.now += 11
    with pytest.raises(UpstreamError):
        await pages.get("pkg")


async def test_one_upstream_failing_the_other_still_serves_with_a_warning(setup: Setup) -> None:
    publish(setup.b, "pkg", "pkg-0.9.tar.gz")
    setup.a.failing = 500
    merged = await setup.make().get("pkg")
    assert filenames(merged) == ["pkg-0.9.tar.gz"]
    assert len(merged.warnings) == 1
    assert "a" in merged.warnings[0] and "500" in merged.warnings[0]


async def test_one_upstream_failing_the_other_404_raises_the_failure(setup: Setup) -> None:
    setup.a.failing = 503
    with pytest.raises(UpstreamError):
        await setup.make().get("pkg")


async def test_malformed_upstream_page_counts_as_an_upstream_failure(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=10)
    first = await pages.get("pkg")
    setup.a.garbage = True
    setup.clock.now += 11
    stale = await pages.get("pkg")
    assert stale.stale is True
    assert stale.page == first.page


# --- 404s ----------------------------------------------------------------------------------


async def test_unknown_project_is_not_found_and_the_404_is_remembered(setup: Setup) -> None:
    pages = setup.make()
    with pytest.raises(ProjectNotFound):
        await pages.get("nope")
    setup.clock.now += NOT_FOUND_TTL - 1
    with pytest.raises(ProjectNotFound):
        await pages.get("nope")
    assert len(setup.a.requests_for("nope")) == 1
    assert len(setup.b.requests_for("nope")) == 1
    publish(setup.a, "nope", "nope-1.0.tar.gz")
    setup.clock.now += 2
    assert filenames(await pages.get("nope")) == ["nope-1.0.tar.gz"]
    assert len(setup.a.requests_for("nope")) == 2


async def test_404_is_remembered_even_with_ttl_zero(setup: Setup) -> None:
    pages = setup.make(ttl_a=0, ttl_b=0)
    for _ in range(3):
        with pytest.raises(ProjectNotFound):
            await pages.get("nope")
    assert len(setup.a.requests_for("nope")) == 1


async def test_project_removed_upstream_becomes_not_found(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=10)
    await pages.get("pkg")
    del setup.a.projects["pkg"]
    setup.clock.now += 11
    with pytest.raises(ProjectNotFound):
        await pages.get("pkg")
    assert pages.peek("pkg") is None


# --- invalidation --------------------------------------------------------------------------


async def test_invalidate_makes_the_next_request_go_upstream(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    pages = setup.make(ttl_a=1000, ttl_b=1000)
    await pages.get("pkg")
    publish(setup.a, "pkg", "pkg-1.0.tar.gz", "pkg-1.1.tar.gz")
    pages.invalidate("pkg")
    assert pages.peek("pkg") is None
    refreshed = await pages.get("pkg")
    assert filenames(refreshed) == ["pkg-1.0.tar.gz", "pkg-1.1.tar.gz"]
    requests = setup.a.requests_for("pkg")
    assert [(validator, status) for _, validator, status in requests] == [(None, 200), (None, 200)]


async def test_invalidate_forgets_a_remembered_404(setup: Setup) -> None:
    pages = setup.make()
    with pytest.raises(ProjectNotFound):
        await pages.get("new-lib")
    publish(setup.b, "new-lib", "new_lib-0.1.tar.gz")
    pages.invalidate("new-lib")
    assert filenames(await pages.get("new-lib")) == ["new_lib-0.1.tar.gz"]


# --- single flight -------------------------------------------------------------------------


async def test_concurrent_requests_share_one_upstream_fetch(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    setup.a.gate = asyncio.Event()
    pages = setup.make()
    tasks = [asyncio.create_task(pages.get("pkg")) for _ in range(5)]
    while not setup.b.log:  # b is not gated: once it has answered, every task is waiting
        await asyncio.sleep(0.001)
    setup.a.gate.set()
    results = await asyncio.gather(*tasks)
    assert len(setup.a.requests_for("pkg")) == 1
    assert len(setup.b.requests_for("pkg")) == 1
    assert all(result is results[0] for result in results)


async def test_a_waiter_is_not_cancelled_with_the_first_requester(setup: Setup) -> None:
    publish(setup.a, "pkg", "pkg-1.0.tar.gz")
    setup.a.gate = asyncio.Event()
    pages = setup.make()
    first = asyncio.create_task(pages.get("pkg"))
    second = asyncio.create_task(pages.get("pkg"))
    while not setup.b.log:  # both requests are under way once b has answered
        await asyncio.sleep(0.001)
    first.cancel()
    setup.a.gate.set()
    merged = await second
    assert filenames(merged) == ["pkg-1.0.tar.gz"]


async def test_a_failure_reaches_every_waiter(setup: Setup) -> None:
    setup.a.failing = 503
    setup.b.failing = 503
    pages = setup.make()
    results = await asyncio.gather(*(pages.get("pkg") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, UpstreamError) for result in results)
    assert len(setup.a.requests_for("pkg")) == 1


# --- the root project list -----------------------------------------------------------------


async def test_index_merges_project_names_in_priority_order(setup: Setup) -> None:
    setup.a.index_names = ["Alpha", "beta"]
    setup.b.index_names = ["BETA", "gamma", "alpha"]
    setup.b.html = False
    pages = setup.make()
    index = await pages.index()
    assert parse_project_index(index.json, "application/vnd.pypi.simple.v1+json") == [
        "Alpha",
        "beta",
        "gamma",
    ]
    assert parse_project_index(index.html, "text/html") == ["Alpha", "beta", "gamma"]
    assert index.project_count == 3
    assert index.stale is False
    again = await pages.index()
    assert again is index


async def test_a_malformed_project_list_is_an_upstream_failure_or_the_last_good_one(
    setup: Setup,
) -> None:
    setup.a.index_names = ["alpha"]
    setup.b.index_names = ["beta"]
    pages = setup.make()
    good = await pages.index()
    assert good.project_count == 2
    setup.clock.now += 100_000
    setup.b.garbage = True  # the list comes back unreadable
    stale = await pages.index()
    assert stale.stale and stale.json == good.json and stale.html == good.html
    fresh_pages = setup.make()  # nothing good to fall back on: a one-line upstream error
    with pytest.raises(UpstreamError, match="malformed project list"):
        await fresh_pages.index()
