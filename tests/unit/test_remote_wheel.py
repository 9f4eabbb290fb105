"""Tests for proxy.upstreams.remote_wheel: reading a wheel member over HTTP ranges from a
loopback server.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.upstreams.remote_wheel import is_dist_info_variant_json, read_remote_member
from proxy.upstreams.source import RangeAnswer
from proxy.upstreams.zip_records import ZipRangeError, parse_content_range

VARIANT_JSON = b'{"variants": {"x8664v3": {"x86_64": {"level": ["v3"]}}}}\n'
BIG_MEMBER_SIZE = 20 * 1024 * 1024


def write_wheel(path: Path, members: list[tuple[str, bytes, int]], comment: bytes = b"") -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data, method in members:
            wheel.writestr(name, data, compress_type=method)
        wheel.comment = comment
    return path


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    write_wheel(
        directory / "big-1.0-py3-none-any-x8664v3.whl",
        [
            # variant.json first, so that the big member lies between it and the tail
            ("big-1.0.dist-info/variant.json", VARIANT_JSON, zipfile.ZIP_DEFLATED),
            ("big/__init__.py", b"", zipfile.ZIP_DEFLATED),
            ("big/weights.bin", os.urandom(BIG_MEMBER_SIZE), zipfile.ZIP_STORED),
            ("big-1.0.dist-info/METADATA", b"Name: big\nVersion: 1.0\n", zipfile.ZIP_DEFLATED),
            ("big-1.0.dist-info/RECORD", b"", zipfile.ZIP_DEFLATED),
        ],
    )
    write_wheel(
        directory / "plain-1.0-py3-none-any.whl",
        [
            ("plain/__init__.py", b"x = 1\n", zipfile.ZIP_DEFLATED),
            ("plain-1.0.dist-info/METADATA", b"Name: plain\n", zipfile.ZIP_DEFLATED),
        ],
    )
    write_wheel(
        directory / "many-1.0-py3-none-any.whl",
        [
            ("many-1.0.dist-info/variant.json", VARIANT_JSON, zipfile.ZIP_STORED),
            *((f"many/m{i:04d}.py", b"i = %d\n" % i, zipfile.ZIP_DEFLATED) for i in range(1500)),
        ],
        comment=b"a long archive comment " * 1000,
    )
    return directory


def serve_ranges_with_unknown_total(
    directory: Path,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Answers ranges itself, with `Content-Range: bytes a-b/*` (total size not given)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        content = (directory / request.match_info["name"]).read_bytes()
        wanted = request.http_range
        start, stop, _ = wanted.indices(len(content))
        body = content[start:stop]
        return web.Response(
            status=206,
            body=body,
            headers={"Content-Range": f"bytes {start}-{start + len(body) - 1}/*"},
        )

    return handler


@pytest.fixture
async def base_url(
    wheel_dir: Path, aiohttp_server: AiohttpServer
) -> AsyncIterator[tuple[str, dict[str, int]]]:
    hits: dict[str, int] = {}

    async def ranged(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(wheel_dir / request.match_info["name"])

    async def ignoring_range(request: web.Request) -> web.StreamResponse:
        return web.Response(body=(wheel_dir / request.match_info["name"]).read_bytes())

    async def changing(request: web.Request) -> web.StreamResponse:
        # The first request sees one wheel, every later one another: an upstream re-upload.
        hits["changing"] = hits.get("changing", 0) + 1
        name = request.match_info["name"] if hits["changing"] == 1 else "plain-1.0-py3-none-any.whl"
        return web.FileResponse(wheel_dir / name)

    async def always_the_start(request: web.Request) -> web.StreamResponse:
        content = (wheel_dir / request.match_info["name"]).read_bytes()
        return web.Response(
            status=206,
            body=content[:10],
            headers={"Content-Range": f"bytes 0-9/{len(content)}"},
        )

    app = web.Application()
    app.router.add_get("/ranged/{name}", ranged)
    app.router.add_get("/ignoring-range/{name}", ignoring_range)
    app.router.add_get("/changing/{name}", changing)
    app.router.add_get("/always-the-start/{name}", always_the_start)
    app.router.add_get("/unknown-total/{name}", serve_ranges_with_unknown_total(wheel_dir))
    server = await aiohttp_server(app)
    yield str(server.make_url("/")), hits


@dataclass
class RangeFetcher:
    """A test-side adapter from HTTP to `fetch_range`, counting what each answer carried."""

    session: aiohttp.ClientSession
    url: str
    statuses: list[int] = field(default_factory=list)
    transferred: int = 0

    async def __call__(self, start: int | None, length: int) -> RangeAnswer:
        byte_range = f"bytes=-{length}" if start is None else f"bytes={start}-{start + length - 1}"
        async with self.session.get(self.url, headers={"Range": byte_range}) as response:
            body = await response.read()
            self.statuses.append(response.status)
            self.transferred += len(body)
            if response.status == 200:
                return RangeAnswer(body, 0, len(body), whole_file=True)
            assert response.status == 206
            content_range = parse_content_range(response.headers["Content-Range"])
            return RangeAnswer(body, content_range.start, content_range.total, whole_file=False)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def test_large_wheel_member_is_read_with_a_few_small_ranges(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession, wheel_dir: Path
) -> None:
    name = "big-1.0-py3-none-any-x8664v3.whl"
    assert (wheel_dir / name).stat().st_size > BIG_MEMBER_SIZE
    fetch = RangeFetcher(session, base_url[0] + "ranged/" + name)
    assert await read_remote_member(fetch, is_dist_info_variant_json) == VARIANT_JSON
    assert fetch.transferred < 200 * 1024
    assert fetch.statuses == [206, 206]


async def test_server_ignoring_range_still_gives_the_member(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "ignoring-range/big-1.0-py3-none-any-x8664v3.whl")
    assert await read_remote_member(fetch, is_dist_info_variant_json) == VARIANT_JSON
    assert fetch.statuses == [200]
    assert fetch.transferred > BIG_MEMBER_SIZE


async def test_wheel_without_the_member_gives_none(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "ranged/plain-1.0-py3-none-any.whl")
    assert await read_remote_member(fetch, is_dist_info_variant_json) is None
    assert fetch.statuses == [206]


async def test_comment_and_central_directory_beyond_a_small_tail(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "ranged/many-1.0-py3-none-any.whl")
    assert await read_remote_member(fetch, is_dist_info_variant_json, 1024) == VARIANT_JSON
    # tail, rest of the comment search window, rest of the central directory, the member
    assert fetch.statuses == [206, 206, 206, 206]


async def test_unknown_total_size_is_taken_from_the_suffix_answer(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "unknown-total/big-1.0-py3-none-any-x8664v3.whl")
    assert await read_remote_member(fetch, is_dist_info_variant_json) == VARIANT_JSON
    assert fetch.transferred < 200 * 1024


async def test_file_changing_between_requests_is_an_error(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "changing/big-1.0-py3-none-any-x8664v3.whl")
    with pytest.raises(ZipRangeError, match=r"file size changed from [0-9]+ to [0-9]+"):
        await read_remote_member(fetch, is_dist_info_variant_json)
    assert base_url[1]["changing"] == 2


async def test_server_answering_other_bytes_is_an_error(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "always-the-start/plain-1.0-py3-none-any.whl")
    with pytest.raises(ZipRangeError, match=r"range request for bytes \[10, [0-9]+\) brought none"):
        await read_remote_member(fetch, is_dist_info_variant_json)


async def test_tail_size_must_be_positive(
    base_url: tuple[str, dict[str, int]], session: aiohttp.ClientSession
) -> None:
    fetch = RangeFetcher(session, base_url[0] + "ranged/plain-1.0-py3-none-any.whl")
    with pytest.raises(ValueError, match="tail_size must be positive, got 0"):
        await read_remote_member(fetch, is_dist_info_variant_json, 0)
    assert fetch.statuses == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pkg-1.0.dist-info/variant.json", True),
        ("pkg/variant.json", False),
        ("pkg-1.0.dist-info/sub/variant.json", False),
        ("vendored/pkg-1.0.dist-info/variant.json", False),
        (".dist-info/variant.json", False),
        ("pkg-1.0.dist-info/variant.json.bak", False),
    ],
)
def test_is_dist_info_variant_json(name: str, expected: bool) -> None:
    assert is_dist_info_variant_json(name) is expected
