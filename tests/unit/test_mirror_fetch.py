"""The mirror's plan and fetch loop: the plan asks for several pages at once; at most `jobs`
downloads run at once, while files already received are being checked and kept (made
durable) behind them, up to `KEPT_PER_JOB` times as many in all, a download's slot going
back once the upstream has sent its last byte. The plan's pages come from a real aiohttp
server on loopback, the downloads from a real `FileStore`."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.mirror.fetch import (
    KEPT_PER_JOB,
    PAGE_JOBS,
    FetchError,
    FetchItem,
    fetch_all,
    plan_fetches,
)
from proxy.mirror.progress import PlainProgress
from proxy.mirror.resolve import Resolution
from proxy.mirror.targets import Fingerprint, PinnedFile, Target
from proxy.store.file_store import (
    ExpectedFile,
    FileStore,
    HashMismatch,
    SourceResponse,
    UpstreamFailed,
)

JOBS = 2


class Fetches:
    """Fake fetches: each downloads (a tick), says so, then keeps its file until released;
    records how many were downloading and how many were in flight at most."""

    def __init__(self) -> None:
        self.downloading = self.in_flight = 0
        self.most_downloading = self.most_in_flight = 0
        self.kept = asyncio.Event()
        self.started: list[str] = []

    async def __call__(self, item: FetchItem, received: Callable[[], None]) -> int:
        self.started.append(item.what)
        self.in_flight += 1
        self.downloading += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.most_downloading = max(self.most_downloading, self.downloading)
        await asyncio.sleep(0)
        self.downloading -= 1
        received()
        received()  # twice gives the slot back once
        try:
            if item.what == "broken":
                raise FetchError("broken: 404 not found")
            await self.kept.wait()
            return 10
        finally:
            self.in_flight -= 1


def items(count: int) -> list[FetchItem]:
    return [FetchItem(f"http://proxy/files/p/{n}", 10, f"file-{n}") for n in range(count)]


async def test_downloads_go_on_while_received_files_are_kept() -> None:
    fetches = Fetches()
    out = io.StringIO()
    running = asyncio.ensure_future(fetch_all(items(50), PlainProgress(out), fetches, JOBS))
    for _ in range(200):  # until every slot for files in flight is taken
        await asyncio.sleep(0)
    assert len(fetches.started) == JOBS * KEPT_PER_JOB  # not JOBS: keeping holds no slot
    assert fetches.most_downloading <= JOBS
    fetches.kept.set()
    assert await asyncio.wait_for(running, 20) == []
    assert len(fetches.started) == 50
    assert fetches.most_downloading <= JOBS
    assert fetches.most_in_flight == JOBS * KEPT_PER_JOB
    assert "50/50 files, 500 B" in out.getvalue()


async def test_a_failed_fetch_gives_its_slots_back() -> None:
    fetches = Fetches()
    fetches.kept.set()
    broken = [FetchItem("http://proxy/files/p/x", None, "broken") for _ in range(3 * JOBS)]
    errors = await asyncio.wait_for(
        fetch_all([*broken, *items(5)], PlainProgress(io.StringIO()), fetches, JOBS), 20
    )
    assert errors == ["broken: 404 not found"] * len(broken)
    assert len(fetches.started) == len(broken) + 5


class Pages:
    """Project pages of one wheel each (the wheel of `p-3` has no metadata file, `p-5`
    has no page); counts the pages being answered at once."""

    def __init__(self) -> None:
        self.answering = self.most_answering = 0

    async def page(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        self.answering += 1
        self.most_answering = max(self.most_answering, self.answering)
        try:
            await asyncio.sleep(0.05)  # long enough for the whole first batch to arrive
        finally:
            self.answering -= 1
        if project == "p-5":
            return web.Response(status=404, text="no such project")
        wheel = {"url": f"../../../../files/{project}/x/{project}.whl", "size": len(project)}
        if project != "p-3":
            wheel["core-metadata"] = True
        return web.json_response({"files": [wheel]})


def resolution(projects: list[str], base_url: str) -> Resolution:
    target = Target(Fingerprint("hw", "cpu=x86_64_v3"), "3.12", None)
    files = tuple(
        PinnedFile(p, "1.0", f"{base_url}/files/{p}/x/{p}.whl#sha256=00", None) for p in projects
    )
    return Resolution(target, files)


async def test_the_plan_asks_for_several_pages_at_once_and_keeps_their_order(
    aiohttp_server: AiohttpServer,
) -> None:
    pages = Pages()
    app = web.Application()
    app.router.add_get("/hw/cpu=x86_64_v3/simple/{project}/", pages.page)
    server = await aiohttp_server(app)
    base_url = str(server.make_url("")).rstrip("/")
    projects = [f"p-{n}" for n in range(4 * PAGE_JOBS) if n != 5]
    async with aiohttp.ClientSession() as session:
        items = await plan_fetches(session, base_url, [resolution(projects, base_url)] * 2)
        with pytest.raises(FetchError, match="p-5/: 404 no such project"):
            await plan_fetches(session, base_url, [resolution(["p-1", "p-5"], base_url)])
    # As many at once as the plan allows, never more.
    assert pages.most_answering == PAGE_JOBS
    expected = []
    for project in projects:
        wheel = f"{base_url}/files/{project}/x/{project}.whl"
        expected.append((wheel, len(project)))
        if project != "p-3":
            expected.append((wheel + ".metadata", None))
    assert [(item.url, item.size) for item in items] == expected


class PausedSource:
    """An upstream file that stops before its last chunk until released."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.paused = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> SourceResponse:
        return SourceResponse(len(self.data), self._chunks())

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield self.data[:-10]
        self.paused.set()
        await self.release.wait()
        yield self.data[-10:]


def expected(data: bytes, *, size: bool = True) -> ExpectedFile:
    return ExpectedFile({"sha256": hashlib.sha256(data).hexdigest()}, len(data) if size else None)


class BrokenSource(PausedSource):
    """An upstream file whose connection breaks before the last chunk."""

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield self.data[:-10]
        raise ConnectionResetError("reset by peer")


@pytest.mark.parametrize("listed_size", [True, False])
async def test_body_received_waits_for_the_last_byte_from_the_upstream(
    tmp_path: Path, listed_size: bool
) -> None:
    data = os.urandom(100_000)
    async with FileStore(tmp_path / "cache", None) as store:
        source = PausedSource(data)
        download = store.download("sha256-whole", source, expected(data, size=listed_size))
        received = asyncio.ensure_future(download.body_received())
        await asyncio.wait_for(source.paused.wait(), 20)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not received.done()
        source.release.set()
        await asyncio.wait_for(received, 20)
        kept = await download.result()
        assert kept is not None and kept.size == len(data)

        wrong = PausedSource(data)
        wrong.release.set()
        other = ExpectedFile({"sha256": hashlib.sha256(b"other").hexdigest()}, len(data))
        mismatched = store.download("sha256-wrong", wrong, other)
        await asyncio.wait_for(mismatched.body_received(), 20)  # every byte came
        with pytest.raises(HashMismatch):
            await mismatched.result()  # but they were not the listed file

        broken = store.download("sha256-broken", BrokenSource(data), expected(data))
        with pytest.raises(UpstreamFailed):
            await asyncio.wait_for(broken.body_received(), 20)
