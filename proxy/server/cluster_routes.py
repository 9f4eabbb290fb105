"""`GET /_cluster/files/{key}?offset=N`: a replica's file, for the other replicas.

While this replica downloads the file, the download in progress is streamed (it follows
the writer, holding back the end until verified); afterwards the local copy is sent.
Another replica asks here when the lock in Redis names this one as the downloader. The
bytes are those of `/files/` (content-addressed, verified); nothing else is reachable.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.server.errors import BadRequest
from proxy.server.state import STATE
from proxy.store.file_store import DownloadFailed, check_key

log = logging.getLogger("variant_proxy")


async def peer_file_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    key = check_key(request.match_info["key"])
    try:
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise BadRequest("offset: expected a number of bytes") from None
    if offset < 0:
        raise BadRequest("offset: must not be negative")
    if state.cluster is None:
        raise web.HTTPNotFound(text="not a cluster replica\n")
    files = state.cluster.files
    download = files.in_flight(key) if files is not None else None
    if download is not None:
        try:
            length = await download.ready()
        except Exception:
            raise web.HTTPNotFound(text="download failed\n") from None
        from proxy.cluster.files import skip_bytes  # only a cluster replica imports S3, Redis

        return await _send(request, length, offset, skip_bytes(download.stream(), offset))
    stored = await state.store.lookup(key)
    if stored is None:
        raise web.HTTPNotFound(text="not here\n")
    return await _send(request, stored.size, offset, stored.blob.chunks(offset))


async def _send(
    request: web.Request, length: int | None, offset: int, chunks: AsyncIterator[bytes]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if length is not None:
        if offset > length:
            raise BadRequest("offset: past the end of the file")
        response.content_length = length - offset
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except (DownloadFailed, OSError) as exc:
        log.warning("peer stream of %s broke: %s", request.match_info["key"], exc)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
