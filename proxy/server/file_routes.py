"""File routes: `/files/{project}/{file-id}/{name}` and its PEP 658 `.metadata`.

A hit is sent from the store's blob (with sendfile when it is a local file); a miss joins
the one shared download of that file and streams it while it arrives (a `Range` waits only
until the download reached it). A `HEAD` of a missing file is answered from the size the
page lists and downloads nothing. Only files a project page listed are ever fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from proxy.server.download_sending import send_download
from proxy.server.errors import BadRequest
from proxy.server.file_sending import FileAnswer, requested_range, send_local_file
from proxy.server.state import STATE, ProxyState
from proxy.simple.model import DistFile
from proxy.simple.names import NormalizedName, normalize_name
from proxy.store.backend import Blob
from proxy.store.file_store import DownloadFailed, ExpectedFile
from proxy.upstreams.offline import NotInMirror
from proxy.upstreams.projects import Located
from proxy.upstreams.source import redact
from proxy.urls.links import FILE_ID_RE, FILENAME_RE, metadata_id, metadata_url

log = logging.getLogger("variant_proxy")


async def file_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    project = project_from_path(request.match_info["project"])
    ident = request.match_info["file_id"]
    filename = request.match_info["filename"]
    if not FILE_ID_RE.fullmatch(ident):
        raise BadRequest(f"bad file id {ident[:80]!r}")
    if not FILENAME_RE.fullmatch(filename) or len(filename) > 512:
        raise BadRequest(f"bad file name {filename[:80]!r}")
    wants_metadata = filename.endswith(".metadata")

    if not wants_metadata:
        stored = await state.store.lookup(ident)
        if stored is not None:
            return await _serve_stored(request, state, stored.blob)
    located = await state.pipeline.locate(project, ident)
    dist = located.dist
    if wants_metadata and not dist.core_metadata:
        raise web.HTTPNotFound(text="this file has no metadata file upstream\n")
    target = file_target(dist, ident, metadata=wants_metadata)
    if wants_metadata:
        stored = await state.store.lookup(target.key)
        if stored is not None:
            return await _serve_stored(request, state, stored.blob, metadata=True)
    elif request.method == "HEAD":
        return await _answer_head(request, dist.size)
    return await _stream_download(
        request, state, located, target.key, target.url, target.expected, metadata=wants_metadata
    )


@dataclass(frozen=True)
class FileTarget:
    """What serving a listed file (or its PEP 658 metadata) downloads: store key, upstream
    URL, and what the bytes must be."""

    key: str
    url: str
    expected: ExpectedFile


def file_target(dist: DistFile, ident: str, *, metadata: bool) -> FileTarget:
    if metadata:
        hashes = dict(dist.core_metadata) if not isinstance(dist.core_metadata, bool) else {}
        return FileTarget(metadata_id(dist), metadata_url(dist), ExpectedFile(hashes, None))
    return FileTarget(ident, dist.url, ExpectedFile(dict(dist.hashes), dist.size))


async def cache_listed_file(
    state: ProxyState,
    project: NormalizedName,
    ident: str,
    *,
    metadata: bool,
    received: Callable[[], None] = lambda: None,
) -> int:
    """Put a listed file (or its metadata) into the store as a GET of it would, without
    sending it anywhere (the in-process mirror); its size. Raises like the route.
    `received()` is called once the upstream has sent a download's last byte, while the
    bytes may still be being checked, and before the file is kept. (The mirror's pages stay
    fresh for its run once asked about, so finding the file asks the upstream nothing.)"""
    located = await state.pipeline.locate(project, ident)
    if metadata and not located.dist.core_metadata:
        raise web.HTTPNotFound(text="this file has no metadata file upstream\n")
    target = file_target(located.dist, ident, metadata=metadata)
    stored = await state.store.lookup(target.key)
    if stored is not None:
        return stored.size
    if state.settings.offline:
        raise NotInMirror(located.dist.filename + (".metadata" if metadata else ""))
    upstream = located.upstream
    download = state.file_fetcher().download(
        target.key, lambda: upstream.open_file(target.url), target.expected
    )
    await download.body_received()
    received()
    kept = await download.result()
    return kept.size if kept is not None else 0


def project_from_path(segment: str) -> NormalizedName:
    """A project name from a file URL, which always carries it normalised."""
    name = normalize_name(segment)
    if name != segment:
        raise BadRequest(f"bad project name {segment[:80]!r}")
    return name


async def _answer_head(request: web.Request, size: int | None) -> web.StreamResponse:
    """The headers a GET would get, without fetching the file (the listed size, if any)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "X-Cache": "miss",
        }
    )
    if size is not None:
        response.content_length = size
    await response.prepare(request)
    await response.write_eof()
    return response


async def _serve_stored(
    request: web.Request, state: ProxyState, blob: Blob, *, metadata: bool = False
) -> web.StreamResponse:
    state.metrics.file_hits += 1
    state.metrics.bytes_served.labels("cache").inc(blob.size)
    headers = {
        "Content-Type": "text/plain" if metadata else "application/octet-stream",
        "X-Cache": "hit",
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    local_file = blob.local_file
    if local_file is not None:  # zero-copy send (sendfile)
        return await send_local_file(request, str(local_file), headers)
    response = web.StreamResponse(headers={**headers, "Accept-Ranges": "bytes"})
    byte_range = requested_range(request, blob.size)
    start, end = byte_range if byte_range is not None else (0, blob.size)
    if byte_range is not None:
        response.set_status(206)
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
    response.content_length = end - start
    await response.prepare(request)
    async for chunk in blob.chunks(start, end):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _stream_download(
    request: web.Request,
    state: ProxyState,
    located: Located,
    key: str,
    url: str,
    expected: ExpectedFile,
    *,
    metadata: bool = False,
) -> web.StreamResponse:
    if state.settings.offline:
        raise NotInMirror(located.dist.filename + (".metadata" if metadata else ""))
    state.metrics.file_misses += 1
    upstream = located.upstream
    download = state.file_fetcher().download(key, lambda: upstream.open_file(url), expected)
    shown_name = located.dist.filename + (".metadata" if metadata else "")
    state.download_watch.name(key, request.match_info["project"], shown_name)
    length = await download.ready()
    byte_range = requested_range(request, length)
    response = FileAnswer(
        headers={
            "Content-Type": "text/plain" if metadata else "application/octet-stream",
            "Accept-Ranges": "bytes",
            "X-Cache": "miss",
        }
    )
    start, end = byte_range if byte_range is not None else (0, length)
    if byte_range is not None:
        response.set_status(206)
        response.headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1] - 1}/{length}"
    if end is not None:
        response.content_length = end - start
    try:
        await response.prepare(request)
        await send_download(request, response, download, start, end)
    except DownloadFailed as exc:
        log.warning("download of %s failed: %s", redact(url), exc)
        response["reason"] = f"download failed: {exc}"
        # Abort the connection: the client must never hold a complete, wrong file.
        if request.transport is not None:
            request.transport.close()
        return response
    except (ConnectionError, aiohttp.ClientConnectionResetError):
        return response  # the client left; the download goes on for the store
    finally:
        state.metrics.bytes_served.labels("upstream").inc(response.body_length)
    await response.write_eof()
    return response
