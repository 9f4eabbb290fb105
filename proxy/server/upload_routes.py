"""`/upload/`: the legacy upload API of the local index (what `twine upload` and `uv publish`
speak), and its admin routes to yank, un-yank and remove a file.

Every route needs the token of the upload directory's `upload_token_env` (a Bearer token, or
basic auth with the token as password): without it the answer is 403, loopback included.
The file part is streamed to a hidden temporary file while it is hashed; the checks
(`proxy.local.checks`) and the publishing (`proxy.local.publish`) decide the rest.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from aiohttp import BodyPartReader, ClientError, web

from proxy.local.checks import (
    Received,
    UploadRejected,
    check_filename,
    check_form,
    check_name_and_version,
    check_upload,
    echo,
    token_matches,
)
from proxy.local.publish import IncomingFile, LocalIndex, NotInIndex
from proxy.local.wheel_contents import WheelContents, WheelError, check_sdist, read_wheel
from proxy.server.responses import error_response
from proxy.server.state import STATE
from proxy.simple.names import normalize_name

CHUNK = 256 * 1024
MAX_FIELDS_BYTES = 16 * 1024 * 1024  # all text fields together (a long description included)


@dataclass
class _Form:
    fields: dict[str, list[str]]
    incoming: IncomingFile | None = None
    filename: str = ""
    field_bytes: int = 0


def _rejection(exc: UploadRejected) -> web.Response:
    response = error_response(exc.status, str(exc))
    # twine shows the reason phrase of a failed upload: make it the one-line message too.
    response.set_status(
        exc.status, str(exc).splitlines()[0][:300].encode("ascii", "replace").decode()
    )
    return response


def _local_index(request: web.Request) -> LocalIndex:
    state = request.app[STATE]
    local = state.local_index
    if local is None:
        raise UploadRejected(404, "uploads are not enabled: no [[upstreams]] with upload = true")
    token = os.environ.get(local.token_env, "") if local.token_env else ""
    if not token:
        raise UploadRejected(
            403, f"uploads are refused: the token variable {local.token_env} is not set"
        )
    if not token_matches(request.headers.get("Authorization"), token):
        raise UploadRejected(403, "upload refused: a valid upload token is needed")
    return local


async def _read_field(part: BodyPartReader, form: _Form) -> None:
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        form.field_bytes += len(chunk)
        if form.field_bytes > MAX_FIELDS_BYTES:
            raise UploadRejected(413, f"the form's text fields exceed {MAX_FIELDS_BYTES} bytes")
        data.extend(chunk)
    name = part.name or ""
    form.fields.setdefault(name, []).append(data.decode("utf-8", "replace"))


async def _read_content(part: BodyPartReader, form: _Form, local: LocalIndex) -> None:
    if form.incoming is not None:
        raise UploadRejected(400, "more than one content part")
    form.filename = part.filename or ""
    check_filename(form.filename)
    if "name" in form.fields:  # twine and uv send the fields first: refuse before the bytes
        check_form(Received(form.fields, form.filename, 0, {}))
        check_name_and_version(Received(form.fields, form.filename, 0, {}))
    form.incoming = await asyncio.to_thread(local.receive, form.filename)
    while chunk := await part.read_chunk(CHUNK):
        form.incoming.write(chunk)


async def _read_form(request: web.Request, local: LocalIndex, form: _Form) -> None:
    if not request.content_type.startswith("multipart/form-data"):
        raise UploadRejected(400, f"expected multipart/form-data, got {echo(request.content_type)}")
    limit = local.max_upload_size + MAX_FIELDS_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise UploadRejected(
            413,
            f"the upload is larger than the local index's limit of {local.max_upload_size} bytes",
        )
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise UploadRejected(400, "nested multipart parts are not accepted")
        if part.name == "content":
            await _read_content(part, form, local)
        else:
            await _read_field(part, form)


async def _open(incoming: IncomingFile, filename: str) -> WheelContents | None:
    try:
        if filename.endswith(".whl"):
            return await asyncio.to_thread(read_wheel, str(incoming.path))
        await asyncio.to_thread(check_sdist, str(incoming.path))
    except WheelError as exc:
        raise UploadRejected(400, f"{filename} is not a valid distribution: {exc}") from None
    return None


async def upload_handler(request: web.Request) -> web.Response:
    form = _Form(fields={})
    try:
        local = _local_index(request)
        await _read_form(request, local, form)
        incoming = form.incoming
        if incoming is None:
            raise UploadRejected(400, "no content part (the file) in the upload")
        await asyncio.to_thread(incoming.finish)
        contents = await _open(incoming, form.filename)
        received = Received(form.fields, form.filename, incoming.size, incoming.digests)
        checked = check_upload(received, contents)
        published = await local.publish(incoming, checked, contents)
    except UploadRejected as exc:
        return _rejection(exc)
    except ValueError as exc:  # a malformed multipart body
        return _rejection(UploadRejected(400, f"malformed upload: {exc}"))
    except (ConnectionError, ClientError) as exc:  # the client went away: not our error
        return _rejection(UploadRejected(400, f"the upload broke off: {type(exc).__name__}"))
    finally:
        if form.incoming is not None:
            form.incoming.discard()
    if not published.created:
        return web.Response(text=f"{published.filename} is already there; nothing changed\n")
    return web.Response(text=f"uploaded {published.filename}\n")


def _target(request: web.Request) -> tuple[str, str]:
    project = request.match_info["project"]
    filename = request.match_info["filename"]
    if normalize_name(project) != project:
        raise UploadRejected(400, f"bad project name {echo(project)}")
    check_filename(filename)
    return project, filename


async def yank_handler(request: web.Request) -> web.Response:
    """POST yanks (body: the reason as text, optional); DELETE un-yanks."""
    try:
        local = _local_index(request)
        project, filename = _target(request)
        reason = (await request.text()).strip()[:1024] if request.method == "POST" else None
        await local.yank(
            normalize_name(project), filename, reason or None, undo=request.method == "DELETE"
        )
    except UploadRejected as exc:
        return _rejection(exc)
    except NotInIndex as exc:
        return error_response(404, str(exc))
    done = "un-yanked" if request.method == "DELETE" else "yanked"
    return web.Response(text=f"{done} {filename}\n")


async def remove_handler(request: web.Request) -> web.Response:
    try:
        local = _local_index(request)
        project, filename = _target(request)
        await local.remove(normalize_name(project), filename)
    except UploadRejected as exc:
        return _rejection(exc)
    except NotInIndex as exc:
        return error_response(404, str(exc))
    return web.Response(text=f"removed {filename}\n")


def add_upload_routes(app: web.Application) -> None:
    app.router.add_post("/upload/", upload_handler, name="upload")
    app.router.add_post("/upload", upload_handler, name="upload-bare")
    app.router.add_route("POST", "/upload/{project}/{filename}/yank", yank_handler, name="yank")
    app.router.add_route("DELETE", "/upload/{project}/{filename}/yank", yank_handler)
    app.router.add_delete("/upload/{project}/{filename}", remove_handler, name="remove")
