"""HTTP caching helpers of pages: ETag comparison, Accept-Encoding, max-age."""

from __future__ import annotations

import gzip
import math
import time

import pytest

from proxy.server.http_cache import (
    MAX_AGE_S,
    PageBody,
    accepts_gzip,
    cache_control,
    etag_matches,
    make_etag,
)


def test_etag_is_weak_and_follows_the_bytes() -> None:
    assert make_etag(b"a").startswith('W/"') and make_etag(b"a") == make_etag(b"a")
    assert make_etag(b"a") != make_etag(b"b")
    assert PageBody(b"page").etag == make_etag(b"page")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ("*", True),
        ('W/"abc"', True),
        ('"abc"', True),
        ('"x", W/"abc"', True),
        ('"x", "y"', False),
    ],
)
def test_if_none_match_weak_comparison(header: str | None, matches: bool) -> None:
    assert etag_matches(header, 'W/"abc"') is matches


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("x-gzip", True),
        ("gzip;q=abc", False),
    ],
)
def test_accepts_gzip(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_max_age_is_the_remaining_freshness_capped() -> None:
    now = time.time()
    assert cache_control(now + 100.9, private=False, stale=False) in (
        "public, max-age=100",
        "public, max-age=99",
    )
    assert cache_control(now - 5, private=True, stale=False) == "private, max-age=0"
    assert cache_control(now + 100, private=False, stale=True) == "public, max-age=0"
    # An offline mirror's pages are fresh forever: capped, never an overflow.
    assert cache_control(math.inf, private=False, stale=False) == f"public, max-age={MAX_AGE_S}"


async def test_gzip_form_is_made_once() -> None:
    page = PageBody(b"x" * 10_000)
    first = await page.gzipped()
    assert gzip.decompress(first) == page.body
    assert await page.gzipped() is first
