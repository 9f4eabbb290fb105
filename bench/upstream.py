"""A static simple-API index on loopback for the benchmarks, run as its own process.

    python -m bench.upstream DATA_ROOT [--port 0]

Serves a `bench.dataset.DataRoot`: `/simple/` (the project list) and `/simple/{project}/`
as PEP 691 JSON when the Accept header asks for it (q-values ignored: any mention of the
JSON type wins), else PEP 503 HTML;
`/files/{project}/{filename}` with aiohttp's `FileResponse` (sendfile, Range, ETag). Pages
carry an ETag and answer a matching `If-None-Match` with 304. Announces
`bench-upstream: serving on http://127.0.0.1:PORT` on stderr once it listens, and runs until
SIGTERM / SIGINT. No access log.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import signal
import sys
from pathlib import Path

from aiohttp import web

from bench.dataset import JSON_CONTENT_TYPE, render_root_html, render_root_json

_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
DATA_ROOT: web.AppKey[Path] = web.AppKey("data_root", Path)


def _wants_json(request: web.Request) -> bool:
    return JSON_CONTENT_TYPE in request.headers.get("Accept", "")


def _page(request: web.Request) -> web.Response:
    project = request.match_info["project"]
    if not _PROJECT_RE.match(project):
        raise web.HTTPNotFound()
    suffix = "json" if _wants_json(request) else "html"
    path = request.app[DATA_ROOT] / "pages" / f"{project}.{suffix}"
    if not path.is_file():
        raise web.HTTPNotFound(text=f"no project {project!r}\n")
    return _answer(request, path.read_bytes())


def _answer(request: web.Request, body: bytes) -> web.Response:
    content_type = JSON_CONTENT_TYPE if _wants_json(request) else "text/html"
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, headers={"ETag": etag, "Content-Type": content_type})


async def root_handler(request: web.Request) -> web.Response:
    names = sorted({path.stem for path in (request.app[DATA_ROOT] / "pages").iterdir()})
    body = render_root_json(names) if _wants_json(request) else render_root_html(names)
    return _answer(request, body)


async def page_handler(request: web.Request) -> web.Response:
    return _page(request)


async def file_handler(request: web.Request) -> web.StreamResponse:
    project, filename = request.match_info["project"], request.match_info["filename"]
    if not _PROJECT_RE.match(project) or not _FILENAME_RE.match(filename):
        raise web.HTTPNotFound()
    path = request.app[DATA_ROOT] / "files" / project / filename
    if not path.is_file():
        raise web.HTTPNotFound(text=f"no file {filename!r}\n")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


def make_app(data_root: Path) -> web.Application:
    app = web.Application()
    app[DATA_ROOT] = data_root
    app.router.add_get("/simple/", root_handler)
    app.router.add_get("/simple/{project}/", page_handler)
    app.router.add_get("/files/{project}/{filename}", file_handler)
    return app


async def serve(data_root: Path, port: int) -> None:
    runner = web.AppRunner(make_app(data_root), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"bench-upstream: serving on http://127.0.0.1:{bound}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.data_root, args.port))


if __name__ == "__main__":
    main()
