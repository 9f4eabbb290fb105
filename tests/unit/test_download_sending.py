"""Cold files sent from the download's temporary file: `Download.written_spans` and
`reader`, and `send_download` with its thread and its fall-back to the loop's sendfile.

Real files, real sockets and a real aiohttp server on loopback; the upstream is the store
tests' `FakeUpstream` (an async generator that can pause or stop).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.server.download_sending import send_download
from proxy.server.file_sending import FileAnswer
from proxy.store.download import Download
from proxy.store.file_store import DownloadFailed, ExpectedFile, FileStore, HashMismatch
from tests.unit.test_store import (
    CHUNK,
    PAYLOAD,
    FakeUpstream,
    expect,
    key_of,
    sha256_of,
    within,
)


async def spans_read(download: Download, start: int, end: int | None, least: int) -> bytes:
    received = bytearray()
    with download.reader() as file:
        async for offset, count in download.written_spans(start, end, least):
            assert offset == start + len(received)
            received += os.pread(file.fileno(), count, offset)
    return bytes(received)


async def test_spans_follow_the_writer_but_hold_the_last_byte_until_verified(
    store: FileStore,
) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=1)
    download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
    await within(download.ready())
    spans = download.written_spans(0, None, 1)
    # One chunk is in and the upstream is paused: all of it but the last byte is out.
    assert await within(anext(spans)) == (0, CHUNK - 1)
    waiting = asyncio.ensure_future(anext(spans))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()
    upstream.release.set()
    offset, _count = await within(waiting)
    assert offset == CHUNK - 1
    await spans.aclose()


async def test_spans_after_the_first_wait_for_the_least_size_but_not_for_the_end(
    store: FileStore,
) -> None:
    upstream = FakeUpstream(PAYLOAD)
    download = store.download(key_of(PAYLOAD), upstream, expect(PAYLOAD))
    sizes = []
    async for _offset, count in download.written_spans(0, None, 3 * CHUNK):
        sizes.append(count)
    assert sum(sizes) == len(PAYLOAD)
    assert all(size >= 3 * CHUNK for size in sizes[1:-1])  # the first goes at once


async def test_a_range_of_spans_is_exactly_the_range(store: FileStore) -> None:
    download = store.download(key_of(PAYLOAD), FakeUpstream(PAYLOAD), expect(PAYLOAD))
    assert await within(spans_read(download, 1000, 200_000, CHUNK)) == PAYLOAD[1000:200_000]
    assert await within(spans_read(download, 0, None, CHUNK)) == PAYLOAD


async def test_a_failed_download_raises_from_its_spans_and_gives_no_reader(
    store: FileStore,
) -> None:
    wrong = ExpectedFile({"sha256": "0" * 64}, len(PAYLOAD))
    download = store.download(key_of(b"other"), FakeUpstream(PAYLOAD), wrong)
    with pytest.raises(HashMismatch):
        await within(spans_read(download, 0, None, 1))
    with pytest.raises(HashMismatch):
        download.reader()


def download_app(
    store: FileStore, upstream: FakeUpstream, expected: ExpectedFile | None = None
) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        download = store.download(key_of(PAYLOAD), upstream, expected or expect(PAYLOAD))
        response = FileAnswer()
        response.content_length = await download.ready()
        await response.prepare(request)
        try:
            await send_download(request, response, download, 0, None)
        except DownloadFailed:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        assert response.body_length == len(PAYLOAD)
        return response

    app = web.Application()
    app.router.add_get("/file", handler)
    return app


@asynccontextmanager
async def file_response(
    store: FileStore,
    upstream: FakeUpstream,
    server_factory: AiohttpServer,
    read_bufsize: int,
    expected: ExpectedFile | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """A client's response for the file `upstream` gives, sent by `send_download`."""
    server = await server_factory(download_app(store, upstream, expected))
    async with aiohttp.ClientSession(read_bufsize=read_bufsize) as session:
        yield await session.get(server.make_url("/file"))


async def test_a_client_gets_every_byte_sent_from_the_file(
    store: FileStore, aiohttp_server: AiohttpServer
) -> None:
    upstream = FakeUpstream(PAYLOAD, pause_before_chunk=2)
    async with file_response(store, upstream, aiohttp_server, 2**16) as response:
        first = await within(response.content.read(CHUNK))
        assert first == PAYLOAD[:CHUNK]
        upstream.release.set()
        rest = await within(response.content.read())
    assert first + rest == PAYLOAD


async def test_a_slow_client_still_gets_every_byte(
    store: FileStore, aiohttp_server: AiohttpServer
) -> None:
    """The client reads in small sips with pauses: the socket fills, the thread gives up,
    and the loop's own sendfile sends the rest of each span."""
    received = bytearray()
    async with file_response(store, FakeUpstream(PAYLOAD), aiohttp_server, 4096) as response:
        while chunk := await within(response.content.read(4096)):
            received += chunk
            await asyncio.sleep(0.001)
    assert bytes(received) == PAYLOAD


async def test_a_failing_download_cuts_the_client_off_short_of_the_end(
    store: FileStore, aiohttp_server: AiohttpServer
) -> None:
    upstream = FakeUpstream(PAYLOAD, fail_after_chunk=2)
    async with file_response(store, upstream, aiohttp_server, 2**16) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await within(response.content.read())


async def test_a_file_of_unknown_length_goes_out_in_chunks_through_aiohttp(
    store: FileStore, aiohttp_server: AiohttpServer
) -> None:
    """Neither the upstream nor the page gives a length: the answer is chunked, which only
    aiohttp can frame (raw sendfile bytes would corrupt it)."""
    upstream = FakeUpstream(PAYLOAD, announce=False)
    unsized = ExpectedFile({"sha256": sha256_of(PAYLOAD)}, None)
    async with file_response(store, upstream, aiohttp_server, 2**16, unsized) as response:
        assert response.headers.get("Transfer-Encoding") == "chunked"
        assert await within(response.content.read()) == PAYLOAD
