"""File routes: `/files/{project}/{file-id}/{name}` and its PEP 658 `.metadata`.

A hit is sent from the store with sendfile; a miss joins the one shared download of that
file and streams it while it arrives. Only files a project page listed are ever fetched.
"""

from __future__ import annotations

import logging
import os

import aiohttp
from aiohttp import web

from proxy.server.state import STATE, BadRequest, ProxyState
from proxy.simple.names import NormalizedName, normalize_name
from proxy.store.file_store import DownloadFailed, ExpectedFile
from proxy.upstreams.projects import Located, MergedProject
from proxy.upstreams.source import redact
from proxy.urls.links import FILE_ID_RE, FILENAME_RE, metadata_id, metadata_url

log = logging.getLogger("variant_proxy")

CHUNK = 256 * 1024


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
        stored = state.store.lookup(ident)
        if stored is not None:
            return _serve_stored(state, stored.path, stored.size, "hit")
    located = await locate(state, project, ident)
    dist = located.dist
    if wants_metadata:
        if not dist.core_metadata:
            raise web.HTTPNotFound(text="this file has no metadata file upstream\n")
        key = metadata_id(dist)
        stored = state.store.lookup(key)
        if stored is not None:
            return _serve_stored(state, stored.path, stored.size, "hit", metadata=True)
        hashes = dict(dist.core_metadata) if not isinstance(dist.core_metadata, bool) else {}
        return await _stream_download(
            request,
            state,
            located,
            key,
            metadata_url(dist),
            ExpectedFile(hashes, None),
            metadata=True,
        )
    return await _stream_download(
        request, state, located, ident, dist.url, ExpectedFile(dict(dist.hashes), dist.size)
    )


def project_from_path(segment: str) -> NormalizedName:
    """A project name from a file URL, which always carries it normalised."""
    name = normalize_name(segment)
    if name != segment:
        raise BadRequest(f"bad project name {segment[:80]!r}")
    return name


async def locate(state: ProxyState, project: NormalizedName, ident: str) -> Located:
    """Find a file on the project's page: the proxy fetches only what a page listed."""
    merged: MergedProject = await state.page_service.get(project)
    located = merged.files.get(ident)
    if located is None:
        raise web.HTTPNotFound(text=f"no file {ident} is listed for project {project}\n")
    return located


def _serve_stored(
    state: ProxyState,
    path: os.PathLike[str] | str,
    size: int,
    cache: str,
    *,
    metadata: bool = False,
) -> web.StreamResponse:
    state.metrics.file_hits += 1
    state.metrics.bytes_served.labels("cache").inc(size)
    response = web.FileResponse(path, chunk_size=CHUNK)
    response.content_type = "text/plain" if metadata else "application/octet-stream"
    response.headers["X-Cache"] = cache
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
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
    state.metrics.file_misses += 1
    upstream = located.upstream
    download = state.store.download(key, lambda: upstream.open_file(url), expected)
    length = await download.ready()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/plain" if metadata else "application/octet-stream",
            "X-Cache": "miss",
        }
    )
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    sent = 0
    try:
        async for chunk in download.stream():
            await response.write(chunk)
            sent += len(chunk)
    except DownloadFailed as exc:
        log.warning("download of %s failed: %s", redact(url), exc)
        # Abort the connection: the client must never hold a complete, wrong file.
        if request.transport is not None:
            request.transport.close()
        return response
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        return response  # the client left; the download goes on for the store
    finally:
        state.metrics.bytes_served.labels("upstream").inc(sent)
    await response.write_eof()
    return response
