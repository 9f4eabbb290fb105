"""An upstream file body as the download reads it (`proxy.upstreams.http.ResponseChunks`):
every byte in order, and the pieces already buffered handed on together, up to a bound."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from proxy.upstream_config import UpstreamSettings
from proxy.upstreams.http import BATCH_BYTES, Upstream

PIECE = 16 * 1024
BODY = os.urandom(PIECE * 200)  # 3.2 MiB: more than three batches
SENT = web.AppKey("sent", asyncio.Event)


async def _write_in_pieces(request: web.Request, *, chunked: bool) -> web.StreamResponse:
    response = web.StreamResponse()
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = len(BODY)
    await response.prepare(request)
    for start in range(0, len(BODY), PIECE):
        await response.write(BODY[start : start + PIECE])
    request.app[SENT].set()
    await response.write_eof()
    return response


async def _plain(request: web.Request) -> web.StreamResponse:
    return await _write_in_pieces(request, chunked=False)


async def _chunked(request: web.Request) -> web.StreamResponse:
    return await _write_in_pieces(request, chunked=True)


@pytest.fixture
async def upstream_url() -> AsyncIterator[tuple[str, asyncio.Event]]:
    app = web.Application()
    sent = asyncio.Event()
    app[SENT] = sent
    app.router.add_get("/files/plain.whl", _plain)
    app.router.add_get("/files/chunked.whl", _chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", sent
    finally:
        await runner.cleanup()


async def _pieces_after_the_upstream_sent(
    upstream_url: tuple[str, asyncio.Event], name: str
) -> list[bytes]:
    base, sent = upstream_url
    settings = UpstreamSettings(name="test", url=f"{base}/simple/", ttl=60)
    async with aiohttp.ClientSession() as session:
        upstream = Upstream(settings, session, environ={})
        response = await upstream.open_file(f"{base}/files/{name}")
        # The whole body is in the client's buffer (1 MiB read buffer, pausing the socket
        # beyond it) or the socket before the first piece is read.
        await asyncio.wait_for(sent.wait(), 20)
        await asyncio.sleep(0.05)
        return [piece async for piece in response.chunks]


async def test_buffered_pieces_go_on_together_up_to_the_bound(
    upstream_url: tuple[str, asyncio.Event],
) -> None:
    pieces = await _pieces_after_the_upstream_sent(upstream_url, "plain.whl")
    assert b"".join(pieces) == BODY
    assert all(len(piece) <= BATCH_BYTES for piece in pieces)
    # 200 writes of 16 KiB, read after they all arrived: a few large pieces, not 200 small.
    assert len(pieces) <= 2 * len(BODY) // BATCH_BYTES + 2


async def test_a_chunked_body_arrives_whole_and_in_order(
    upstream_url: tuple[str, asyncio.Event],
) -> None:
    pieces = await _pieces_after_the_upstream_sent(upstream_url, "chunked.whl")
    assert b"".join(pieces) == BODY
