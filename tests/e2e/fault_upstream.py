"""A misbehaving upstream on loopback for the fault suite: files whose faults a test switches.

It speaks HTTP/1.1 over raw asyncio streams, not through a web framework, so it can send what
a well-behaved server never would: a wrong `Content-Length`, half a body, a reset, nothing at
all. It serves PEP 691 JSON project pages (`/simple/{project}/`, with sha256 and size) and
the files they list (`/files/{filename}`), and records every request it reads.

Each file has a `Fault` (`set_fault(filename, fault)`), applied to every GET of it:
`NONE`, `CUT` (half the body, then close), `CORRUPT` (one byte flipped, right length),
`LONG_LENGTH` / `SHORT_LENGTH` (announces more / fewer bytes than the page lists, sends what
it announced at most, then closes), `TRICKLE` (small chunks with pauses), `HANG` (reads the
request, never answers), `HANG_BODY` (headers and a part of the body, then nothing),
`STATUS_503`, `RESET` (reads the request, then a TCP reset), `REDIRECT` (302 to
`redirect_to`).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import unquote

TRICKLE_CHUNK = 4 * 1024
TRICKLE_DELAY_S = 0.01


class Fault(enum.Enum):
    NONE = "none"
    CUT = "cut"
    CORRUPT = "corrupt"
    LONG_LENGTH = "long-length"
    SHORT_LENGTH = "short-length"
    TRICKLE = "trickle"
    HANG = "hang"
    HANG_BODY = "hang-body"
    STATUS_503 = "503"
    RESET = "reset"
    REDIRECT = "redirect"


@dataclass
class FaultyFile:
    project: str
    filename: str
    data: bytes
    url: str | None = None  # listed URL when not this server's own /files/{filename}
    fault: Fault = Fault.NONE
    redirect_to: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FaultUpstream:
    """The misbehaving index on `host` (a loopback address), in a thread of its own."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._files: dict[str, FaultyFile] = {}
        self._seen: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._hanging: set[asyncio.StreamWriter] = set()

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> FaultUpstream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        async def shut() -> None:
            for writer in list(self._hanging):
                writer.close()
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> FaultUpstream:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- content and knobs -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def index_url(self) -> str:
        return f"{self.base_url}/simple/"

    def add_file(self, project: str, filename: str, data: bytes, url: str | None = None) -> None:
        with self._lock:
            self._files[filename] = FaultyFile(project, filename, data, url)

    def set_fault(self, filename: str, fault: Fault, redirect_to: str = "") -> None:
        with self._lock:
            self._files[filename].fault = fault
            self._files[filename].redirect_to = redirect_to

    def file_path(self, filename: str) -> str:
        return f"/files/{filename}"

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def gets(self, path: str) -> int:
        return sum(1 for r in self.seen() if r.method == "GET" and r.path == path)

    # ---- HTTP --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self._seen.append(request)
                if not await self._answer(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._hanging.discard(writer)
            writer.close()

    async def _answer(self, request: SeenRequest, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused."""
        if request.path.startswith("/simple/"):
            project = request.path.removeprefix("/simple/").strip("/")
            body = self._page(project)
            if body is None:
                await _respond(writer, 404, b"no such project\n")
            else:
                await _respond(writer, 200, body, "application/vnd.pypi.simple.v1+json")
            return True
        filename = unquote(request.path.removeprefix("/files/"))
        with self._lock:
            hosted = self._files.get(filename)
        if hosted is None:
            await _respond(writer, 404, b"no such file\n")
            return True
        if request.method == "HEAD":
            await _send_head(writer, 200, len(hosted.data))
            return True
        return await self._send_file(hosted, writer)

    def _page(self, project: str) -> bytes | None:
        with self._lock:
            files = [f for f in self._files.values() if f.project == project]
        if not files:
            return None
        entries = [
            {
                "filename": f.filename,
                "url": f.url or f"../../files/{f.filename}",
                "hashes": {"sha256": f.sha256},
                "size": len(f.data),
            }
            for f in files
        ]
        document = {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
        return json.dumps(document).encode()

    async def _send_file(self, hosted: FaultyFile, writer: asyncio.StreamWriter) -> bool:
        data, fault = hosted.data, hosted.fault
        if fault is Fault.HANG:
            self._hanging.add(writer)
            await asyncio.Event().wait()
        if fault is Fault.RESET:
            _reset(writer)
            return False
        if fault is Fault.STATUS_503:
            await _respond(writer, 503, b"upstream down (fault knob)\n")
            return True
        if fault is Fault.REDIRECT:
            await _respond(writer, 302, b"", extra={"Location": hosted.redirect_to})
            return True
        if fault is Fault.CORRUPT:
            damaged = bytearray(data)
            damaged[len(damaged) // 2] ^= 0xFF
            data = bytes(damaged)
        announced = _announced_length(fault, len(data))
        await _send_head(writer, 200, announced)
        return await _send_body(writer, data, fault, announced, self._hanging)


def _announced_length(fault: Fault, size: int) -> int:
    if fault is Fault.LONG_LENGTH:
        return size + 1000
    if fault is Fault.SHORT_LENGTH:
        return size // 2
    return size


async def _send_body(
    writer: asyncio.StreamWriter,
    data: bytes,
    fault: Fault,
    announced: int,
    hanging: set[asyncio.StreamWriter],
) -> bool:
    if fault in (Fault.CUT, Fault.HANG_BODY):
        writer.write(data[: len(data) // 2])
        await writer.drain()
        if fault is Fault.HANG_BODY:
            hanging.add(writer)
            await asyncio.Event().wait()
        return False
    body = data[:announced]
    step = TRICKLE_CHUNK if fault is Fault.TRICKLE else 256 * 1024
    for offset in range(0, len(body), step):
        writer.write(body[offset : offset + step])
        await writer.drain()
        if fault is Fault.TRICKLE:
            await asyncio.sleep(TRICKLE_DELAY_S)
    return fault not in (Fault.LONG_LENGTH, Fault.SHORT_LENGTH)


async def _read_request(reader: asyncio.StreamReader) -> SeenRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return SeenRequest(method, path.split("?", 1)[0], headers)


async def _send_head(
    writer: asyncio.StreamWriter, status: int, length: int, extra: dict[str, str] | None = None
) -> None:
    headers = {"Content-Type": "application/octet-stream", **(extra or {})}
    lines = [
        f"HTTP/1.1 {status} X",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "text/plain",
    extra: dict[str, str] | None = None,
) -> None:
    head = {"Content-Type": content_type, **(extra or {})}
    await _send_head(writer, status, len(body), head)
    writer.write(body)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock: Any = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
