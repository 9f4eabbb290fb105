"""Sending a file to a client while the store downloads it: straight from the temporary
file with `sendfile`, span by span as the download's writer puts the bytes there.

Sending from memory cost a copy out of the file (or the queue) and another into the
socket, and asyncio's send buffer moves its remainder after every partial send; `sendfile`
is one copy in the kernel. That copy (and the loopback client's receive work it triggers)
was most of the event loop's time on a cold file, in series with reading the upstream, so
spans go out through the warm files' `ThreadedSender` (a worker thread while one is free
and the client keeps up, else the loop's own sendfile). Spans are at least
`SEND_SPAN_BYTES` (but for the last, or bytes that waited a few ms for more).
"""

from __future__ import annotations

from aiohttp import web

from proxy.server.file_sending import FileAnswer, Progress, ThreadedSender, process_sender
from proxy.store.download import Download

SEND_SPAN_BYTES = 1024 * 1024


async def send_download(
    request: web.Request,
    response: FileAnswer,
    download: Download,
    start: int,
    end: int | None,
    sender: ThreadedSender | None = None,
) -> None:
    """Send bytes [start, end) of `download` to the client of `request` (whose `response`
    is prepared, and counts what was sent), as the download goes. Raises `DownloadFailed`
    when the download fails, and a `ConnectionError` when the client leaves."""
    if response.content_length is None:  # so aiohttp frames the body in chunks: it writes it
        async for chunk in download.stream(start, end):
            await response.write(chunk)
        return
    with download.reader() as file:
        async for offset, count in download.written_spans(start, end, SEND_SPAN_BYTES):
            progress = Progress(offset)
            try:
                await (sender or process_sender()).send(request, file, progress, offset + count)
            finally:
                response.sent_by_sendfile += progress.offset - offset
