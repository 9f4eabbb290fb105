"""The warm-file sender on a real aiohttp server on loopback: more clients than sending
threads (the event loop sends for the rest), ranges, and a client that leaves mid-body."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from proxy.server.file_sending import ThreadedSender, send_local_file

FILE_BYTES = 24 * 1024 * 1024  # more than the socket buffers on both sides hold
MakeClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(FILE_BYTES)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, data


def file_app(path: Path, sender: ThreadedSender) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await send_local_file(request, str(path), {"X-Cache": "hit"}, sender)

    app = web.Application()
    app.router.add_get("/blob", handler)
    return app


async def serving(
    aiohttp_client: MakeClient, path: Path, threads: int
) -> tuple[TestClient[web.Request, web.Application], ThreadedSender]:
    """A client of a server that sends `path` through a sender of `threads` threads."""
    sender = ThreadedSender(threads=threads)
    return await aiohttp_client(file_app(path, sender)), sender


async def test_more_clients_than_threads_all_get_every_byte(
    aiohttp_client: MakeClient, data_file: tuple[Path, bytes]
) -> None:
    path, data = data_file
    client, sender = await serving(aiohttp_client, path, 1)

    async def fetch() -> bytes:
        async with client.get("/blob") as answer:
            assert answer.status == 200
            return await answer.read()

    bodies = await asyncio.gather(*(fetch() for _ in range(6)))
    assert all(body == data for body in bodies)
    sender.close()


async def test_ranges_and_head_through_the_sender(
    aiohttp_client: MakeClient, data_file: tuple[Path, bytes]
) -> None:
    path, data = data_file
    client, sender = await serving(aiohttp_client, path, 2)
    async with client.get("/blob", headers={"Range": "bytes=1000-"}) as answer:
        assert answer.status == 206
        assert await answer.read() == data[1000:]
    async with client.head("/blob") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Length"] == str(FILE_BYTES)
    sender.close()


async def test_a_client_leaving_mid_body_ends_the_answer_quietly(
    aiohttp_client: MakeClient, data_file: tuple[Path, bytes]
) -> None:
    path, _ = data_file
    client, sender = await serving(aiohttp_client, path, 1)
    for _ in range(3):
        answer = await client.get("/blob")
        await answer.content.readexactly(64 * 1024)
        assert sender.busy == 1
        answer.close()  # drops the connection with most of the body unsent
        for _ in range(100):  # the thread gives up at once, not when the body would end
            if sender.busy == 0:
                break
            await asyncio.sleep(0.01)
        assert sender.busy == 0
    async with client.get("/blob") as answer:
        assert len(await answer.read()) == FILE_BYTES
    sender.close()
