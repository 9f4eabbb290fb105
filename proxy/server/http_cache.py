"""HTTP caching of pages: ETag and 304, `Cache-Control: max-age`, gzip.

A `PageBody` is one rendered page as the proxy keeps it: its bytes, its ETag (a digest of
the bytes, computed once) and, the first time a client accepts gzip, its compressed form,
also computed once (large bodies in a thread). A hot page therefore costs a dictionary
lookup and a header comparison, whatever the client asks; the root list is compressed
once per version of the page, not per request.

ETags are weak (`W/"..."`): the same ETag stands for the identity and the gzip bytes,
which are semantically the same page.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import math
import time
from dataclasses import dataclass, field

from aiohttp import web

# Below this, gzip saves less than its own framing (about 20 bytes) is worth.
MIN_GZIP_BYTES = 200
# Above this, compression runs in a worker thread (zlib releases the GIL).
THREAD_GZIP_BYTES = 256 * 1024
GZIP_LEVEL = 6
MAX_AGE_S = 86400


def make_etag(body: bytes) -> str:
    return 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@dataclass
class PageBody:
    """A rendered page, its ETag, and its gzip form once a client asked for it."""

    body: bytes
    etag: str = ""
    _gzipped: bytes | None = field(default=None, repr=False)
    _gzipping: asyncio.Future[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = make_etag(self.body)

    async def gzipped(self) -> bytes:
        """The gzip form, compressed by the first caller; concurrent callers share it."""
        if self._gzipped is not None:
            return self._gzipped
        if self._gzipping is None:
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._gzipping = future
            try:
                if len(self.body) >= THREAD_GZIP_BYTES:
                    compressed = await asyncio.to_thread(_compress, self.body)
                else:
                    compressed = _compress(self.body)
            except BaseException as exc:
                self._gzipping = None
                future.set_exception(exc)
                future.exception()  # retrieved: waiters get it, nobody else is told
                raise
            self._gzipped = compressed
            future.set_result(compressed)
            return compressed
        return await asyncio.shield(self._gzipping)


def _compress(body: bytes) -> bytes:
    # mtime=0: the same page always compresses to the same bytes.
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` against our ETag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == ours for candidate in if_none_match.split(",")
    )


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether `Accept-Encoding` allows gzip (q > 0, by name or by `*`)."""
    if not accept_encoding:
        return False
    wildcard: bool | None = None
    for entry in accept_encoding.lower().split(","):
        coding, *parameters = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            wildcard = quality > 0
    return bool(wildcard)


def cache_control(fresh_until: float, *, private: bool, stale: bool) -> str:
    """`max-age` = the page's remaining freshness (0 for a stale answer), at most a day
    (an offline mirror's pages never go stale here, but a later import may change them)."""
    left = min(float(MAX_AGE_S), max(0.0, fresh_until - time.time()))  # inf -> the cap
    remaining = 0 if stale else math.floor(left)
    return f"{'private' if private else 'public'}, max-age={remaining}"


async def page_answer(
    request: web.Request,
    page: PageBody,
    content_type: str,
    headers: dict[str, str],
) -> web.Response:
    """200 (gzip when accepted and worth it) or 304 when the client holds this version.

    `headers` (Vary, Cache-Control, ...) go on both; `Accept-Encoding` is added to Vary.
    """
    headers = {**headers, "ETag": page.etag}
    headers["Vary"] = (
        headers["Vary"] + ", Accept-Encoding" if "Vary" in headers else "Accept-Encoding"
    )
    if etag_matches(request.headers.get("If-None-Match"), page.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    if len(page.body) >= MIN_GZIP_BYTES and accepts_gzip(request.headers.get("Accept-Encoding")):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=await page.gzipped(), headers=headers)
    return web.Response(body=page.body, headers=headers)
