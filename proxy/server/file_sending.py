"""Sending a stored file that lies on local disk: validators, `Range`, and the body by sendfile.

The warm-file path, kept as lean as a static file server's: the file is opened on the event
loop (the store has just done a `stat` there too; a cached file's inode is in memory), its
`ETag` and `Last-Modified` answer conditional requests (304, 412), a single `Range` gives a
206, and the body goes out with `sendfile` from a worker thread (`ThreadedSender`): the
thread sends as fast as the client reads without waking the event loop for each refill of the
socket buffer. A client that stops reading for longer than `SLOW_CLIENT_MS` gives its thread
back, and the event loop's own sendfile finishes it, so slow clients cannot hold the threads.
"""

from __future__ import annotations

import asyncio
import functools
import os
import select
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from aiohttp import web
from aiohttp.helpers import ETAG_ANY, ETag

SEND_THREADS = 16
# A client whose socket stays full this long is slow: the event loop sends the rest.
# It is also how often a waiting thread looks whether its request was abandoned.
SLOW_CLIENT_MS = 50


class ShortFile(OSError):
    """The stored file holds fewer bytes than it was opened with."""


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the validators of an open file are made of."""

    size: int
    mtime_ns: int

    @property
    def etag(self) -> str:
        """The entity tag (unquoted), in aiohttp's `FileResponse` form: clients that kept
        one from earlier answers still match."""
        return f"{self.mtime_ns:x}-{self.size:x}"

    @property
    def mtime_s(self) -> int:
        """The modification time in whole seconds, as `Last-Modified` shows it."""
        return self.mtime_ns // 1_000_000_000


def requested_range(request: web.BaseRequest, length: int | None) -> tuple[int, int] | None:
    """[start, end) of a single-range `Range` request; None to send the whole file.

    A malformed or multi-part `Range` is ignored (RFC 9110 lets a server send the whole
    file); a range past the end is 416.
    """
    if "Range" not in request.headers or length is None:
        return None
    try:
        byte_range = request.http_range
    except ValueError:
        return None
    start, stop = byte_range.start, byte_range.stop
    if start is None:
        return None
    if start < 0:
        start, stop = max(length + start, 0), length
    else:
        stop = length if stop is None else min(stop, length)
    if start >= stop:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{length}"})
    return start, stop


def _matches(tags: tuple[ETag, ...], etag: str, *, weak: bool) -> bool:
    if len(tags) == 1 and tags[0].value == ETAG_ANY:
        return True
    return any(tag.value == etag for tag in tags if weak or not tag.is_weak)


def precondition_status(request: web.BaseRequest, facts: FileFacts) -> int | None:
    """412 or 304 when a conditional header says so (RFC 9110 section 13.2.2 order), else
    None: send the file."""
    if_match = request.if_match
    if if_match is not None and not _matches(if_match, facts.etag, weak=False):
        return 412
    unmodified_since = request.if_unmodified_since
    if (
        if_match is None
        and unmodified_since is not None
        and facts.mtime_s > unmodified_since.timestamp()
    ):
        return 412
    if_none_match = request.if_none_match
    if if_none_match is not None:
        return 304 if _matches(if_none_match, facts.etag, weak=True) else None
    modified_since = request.if_modified_since
    if modified_since is not None and facts.mtime_s <= modified_since.timestamp():
        return 304
    return None


def range_applies(request: web.BaseRequest, facts: FileFacts) -> bool:
    """Whether a `Range` is honoured: always without `If-Range`; with it, only while its
    validator (a strong entity tag, or a date) still matches the file."""
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    if validator.startswith('"'):
        return validator == f'"{facts.etag}"'
    date = request.if_range
    return date is not None and facts.mtime_s <= date.timestamp()


class FileAnswer(web.StreamResponse):
    """A response whose body goes out by sendfile, past aiohttp's writer (which writes only
    the head): `body_length`, what the access log shows when the connection is closing by
    the time the line is written, is the body bytes that went out."""

    sent_by_sendfile = 0

    @property
    def body_length(self) -> int:
        return self.sent_by_sendfile


class Progress:
    """How far a body has gone: written by the sending thread, read once it is done."""

    __slots__ = ("abandoned", "offset")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.abandoned = False


def send_until_slow(socket_fd: int, file_fd: int, progress: Progress, end: int) -> None:
    """sendfile up to `end` to a non-blocking socket, waiting while its buffer is full, until
    done, the client read nothing for `SLOW_CLIENT_MS`, or the request was abandoned.

    Runs in a worker thread and closes both descriptors (duplicates it was given). Raises
    `ConnectionError` when the client left."""
    try:
        poller = select.poll()
        poller.register(socket_fd, select.POLLOUT)
        while progress.offset < end and not progress.abandoned:
            wanted = end - progress.offset
            try:
                sent = os.sendfile(socket_fd, file_fd, progress.offset, wanted)
            except BlockingIOError:
                sent = 0
            else:
                if sent == 0:
                    raise ShortFile(f"the file ended {wanted} bytes early")
            progress.offset += sent
            # Less than asked: the socket buffer is full. Wait for room rather than try again
            # (one system call, and one taking of the GIL, fewer per refill).
            if sent < wanted and not poller.poll(SLOW_CLIENT_MS):
                return
    finally:
        os.close(socket_fd)
        os.close(file_fd)


class ThreadedSender:
    """Sends file bodies from a few threads; the event loop's sendfile when none is free, the
    connection is not a plain socket, or the client is slow."""

    def __init__(self, threads: int = SEND_THREADS) -> None:
        self._threads = threads
        self._busy = 0  # only touched on the event loop
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sendfile")

    async def send(
        self, request: web.BaseRequest, file: IO[bytes], progress: Progress, end: int
    ) -> None:
        """Send `file` from `progress.offset` to `end` on the request's connection. Raises
        `ConnectionError` when the client left (`progress` says how far it got)."""
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client left")
        if self._can_take(transport):
            sock = transport.get_extra_info("socket")
            await self._send_in_thread(sock.fileno(), file.fileno(), progress, end)
        if progress.offset < end:
            loop = asyncio.get_running_loop()
            progress.offset += await loop.sendfile(
                transport, file, progress.offset, end - progress.offset
            )
            if progress.offset < end:
                raise ShortFile(f"the file ended {end - progress.offset} bytes early")

    def _can_take(self, transport: asyncio.Transport) -> bool:
        return (
            self._busy < self._threads
            # nothing of aiohttp's (the head) is still waiting to go out first
            and transport.get_write_buffer_size() == 0
            and transport.get_extra_info("sslcontext") is None
            and transport.get_extra_info("socket") is not None
        )

    async def _send_in_thread(
        self, socket_fd: int, file_fd: int, progress: Progress, end: int
    ) -> None:
        # The thread works on duplicates it closes itself: should this request be abandoned
        # and its connection and file closed meanwhile, no number it holds can be reused.
        duplicates = _duplicates(socket_fd, file_fd)
        if duplicates is None:
            return  # out of descriptors: the event loop sends it all
        work = asyncio.get_running_loop().run_in_executor(
            self._pool, send_until_slow, *duplicates, progress, end
        )
        self._busy += 1
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            progress.abandoned = True
            raise
        finally:
            self._busy -= 1

    @property
    def busy(self) -> int:
        """How many threads are sending now."""
        return self._busy

    def close(self) -> None:
        """Let the threads end once their sends are done."""
        self._pool.shutdown(wait=False)


def _duplicates(socket_fd: int, file_fd: int) -> tuple[int, int] | None:
    """Duplicates of both descriptors, or None (and none left open) when there are no more."""
    try:
        socket_copy = os.dup(socket_fd)
    except OSError:
        return None
    try:
        return socket_copy, os.dup(file_fd)
    except OSError:
        os.close(socket_copy)
        return None


@functools.cache
def process_sender() -> ThreadedSender:
    """The process's sender (its threads start when first needed)."""
    return ThreadedSender()


async def send_local_file(
    request: web.BaseRequest,
    path: str,
    headers: dict[str, str],
    sender: ThreadedSender | None = None,
) -> web.StreamResponse:
    """Answer `request` with the local file at `path`: 200, 206, 304, 412 or 416 (the body
    sent by `sender`, by default the process's)."""
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 (the `with` below closes it)
    except OSError as exc:
        raise web.HTTPNotFound(text="the stored file is gone\n") from exc
    with file:
        info = os.fstat(file.fileno())
        facts = FileFacts(info.st_size, info.st_mtime_ns)
        response = FileAnswer(headers=headers)
        response.headers["Accept-Ranges"] = "bytes"
        response.etag = facts.etag
        response.last_modified = facts.mtime_s
        status = precondition_status(request, facts)
        if status is not None:
            return await _answer_without_body(request, response, status)
        start, end = _span(request, response, facts)
        await response.prepare(request)
        if request.method != "HEAD" and end > start:
            progress = Progress(start)
            try:
                await (sender or process_sender()).send(request, file, progress, end)
            except ConnectionError:
                return response  # the client left: no error, the access line says so
            finally:
                response.sent_by_sendfile = progress.offset - start
        await response.write_eof()
        return response


async def _answer_without_body(
    request: web.BaseRequest, response: web.StreamResponse, status: int
) -> web.StreamResponse:
    response.set_status(status)
    if status != 304:
        response.content_length = 0
    await response.prepare(request)
    await response.write_eof()
    return response


def _span(
    request: web.BaseRequest, response: web.StreamResponse, facts: FileFacts
) -> tuple[int, int]:
    """[start, end) to send, with the status and length headers that say so."""
    byte_range = requested_range(request, facts.size) if range_applies(request, facts) else None
    start, end = byte_range if byte_range is not None else (0, facts.size)
    if byte_range is not None:
        response.set_status(206)
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{facts.size}"
    response.content_length = end - start
    return start, end
