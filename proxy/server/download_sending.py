"""Sending a file to a client while the store downloads it: straight from the temporary
file with `sendfile`, span by span as the download's writer thread puts the bytes there.

Sending from memory cost a copy out of the file (or the queue) and another into the
socket, and asyncio's send buffer moves its remainder after every partial send; `sendfile`
is one copy in the kernel. That copy (and the loopback client's receive work it triggers)
was most of the event loop's time on a cold file, in series with reading the upstream, so
each span is sent by a worker thread (`os.sendfile` releases the GIL) while the loop goes
on receiving. The thread never waits long on a client: once the socket has stayed full for
`THREAD_PATIENCE_S`, the rest of the span goes through the loop's own `sendfile`, which
waits without holding a thread. Spans are at least `SEND_SPAN_BYTES` (but for the last).
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
from typing import BinaryIO

from aiohttp import web

from proxy.store.download import Download

SEND_SPAN_BYTES = 1024 * 1024
THREAD_PATIENCE_S = 0.05


class SentCount:
    """Bytes handed to the client so far (kept when sending stops half-way)."""

    def __init__(self) -> None:
        self.total = 0


async def send_download(
    request: web.Request, download: Download, start: int, end: int | None, sent: SentCount
) -> None:
    """Send bytes [start, end) of `download` to the client of `request` (whose response is
    prepared), as the download goes. Raises `DownloadFailed` when the download fails, and a
    `ConnectionError` when the client leaves."""
    client = _client_socket(request)
    # A descriptor of our own: the thread must never send on a number the transport closed
    # and the process reused.
    with download.reader() as file, socket.socket(fileno=os.dup(client.fileno())) as own:
        async for offset, count in download.written_spans(start, end, SEND_SPAN_BYTES):
            await _send_span(request, own, file, offset, count)
            sent.total += count


def _client_socket(request: web.Request) -> socket.socket:
    transport = request.transport
    client = None if transport is None else transport.get_extra_info("socket")
    if transport is None or transport.is_closing() or client is None:
        raise ConnectionResetError("the client left")
    return client  # type: ignore[no-any-return]


async def _send_span(
    request: web.Request, own: socket.socket, file: BinaryIO, offset: int, count: int
) -> None:
    loop = asyncio.get_running_loop()
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client left")
    if transport.get_write_buffer_size() == 0:  # nothing of aiohttp's is queued before us
        done = await loop.run_in_executor(
            None, _send_while_taken, own.fileno(), file.fileno(), offset, count
        )
        offset, count = offset + done, count - done
    if count:
        await loop.sendfile(transport, file, offset, count)


def _send_while_taken(sock_fd: int, file_fd: int, offset: int, count: int) -> int:
    """In a worker thread: `sendfile` bytes [offset, offset + count) to the non-blocking
    socket until done or until it stays full for `THREAD_PATIENCE_S`; the bytes sent."""
    sent = 0
    poller: select.poll | None = None
    while sent < count:
        try:
            step = os.sendfile(sock_fd, file_fd, offset + sent, count - sent)
        except BlockingIOError:
            if poller is None:
                poller = select.poll()
                poller.register(sock_fd, select.POLLOUT)
            if not poller.poll(THREAD_PATIENCE_S * 1000):
                break
            continue
        if step == 0:
            raise OSError(f"the download's file ends before byte {offset + count}")
        sent += step
    return sent
