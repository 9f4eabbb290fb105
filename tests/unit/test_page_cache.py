"""The page cache's on-disk format: versioned JSON header + raw body, never a pickle."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import diskcache

from proxy.pages.cache import PAGE_CACHE_DIR, CachedPage, PageCache, cache_key
from proxy.pages.format import PAGE_FORMAT, decode_page, encode_page

BODY = b'<a href="pkg-1.0.tar.gz">pkg-1.0.tar.gz</a>\n\x00\xff binary and\nnewlines\n'


def page() -> CachedPage:
    return CachedPage.of(BODY, "text/html", "http://127.0.0.1:1/simple/pkg/", 12.5, '"e"', None)


def test_a_page_survives_a_restart_byte_for_byte(tmp_path: Path) -> None:
    key = cache_key("project", "up", "pkg")
    cache = PageCache(tmp_path / PAGE_CACHE_DIR)
    cache.put(key, page())
    cache.close()
    reopened = PageCache(tmp_path / PAGE_CACHE_DIR)
    assert reopened.get(key) == page()
    reopened.close()


def test_the_stored_value_is_a_json_line_and_the_body_not_a_pickle(tmp_path: Path) -> None:
    key = cache_key("project", "up", "pkg")
    cache = PageCache(tmp_path / "pages")
    cache.put(key, page())
    cache.close()
    with diskcache.Cache(str(tmp_path / "pages")) as raw:
        stored = raw.get(key)
    assert isinstance(stored, bytes)
    assert stored.startswith(b'{"format":%d,' % PAGE_FORMAT)
    assert stored.endswith(b"\n" + BODY)


def test_an_old_pickled_entry_or_foreign_bytes_are_a_miss(tmp_path: Path) -> None:
    with diskcache.Cache(str(tmp_path / "pages")) as raw:
        raw.set("pickled", pickle.dumps(page()))
        raw.set("object", {"format": PAGE_FORMAT})
        raw.set("other-format", b'{"format": 1}\n' + BODY)
    cache = PageCache(tmp_path / "pages")
    assert [cache.get(k) for k in ("pickled", "object", "other-format", "absent")] == [None] * 4
    cache.close()


def test_a_remembered_404_round_trips() -> None:
    missing = CachedPage(b"", "", "http://127.0.0.1:1/simple/gone/", None, None, 3.0, missing=True)
    assert decode_page(encode_page(missing)) == missing


def test_the_folder_is_named_by_the_format_version() -> None:
    assert PAGE_CACHE_DIR == f"pages-v{PAGE_FORMAT}" == "pages-v2"


def test_a_revalidation_freshens_the_stored_body_without_rewriting_it(tmp_path: Path) -> None:
    key = cache_key("project", "up", "pkg")
    cache = PageCache(tmp_path / PAGE_CACHE_DIR)
    cache.put(key, page())
    stored = cache._disk.get(key)
    cache.refresh(key, replace(page(), fetched_at=99.0))
    assert cache._disk.get(key) == stored  # the body's entry is as it was
    assert cache.get(key) == replace(page(), fetched_at=99.0)
    assert cache.all_keys() == [key]
    cache.close()
    reopened = PageCache(tmp_path / PAGE_CACHE_DIR)
    assert reopened.get(key) == replace(page(), fetched_at=99.0)
    reopened.close()


def test_a_revalidation_never_freshens_a_newer_body(tmp_path: Path) -> None:
    key = cache_key("project", "up", "pkg")
    cache = PageCache(tmp_path / PAGE_CACHE_DIR)
    cache.put(key, page())
    cache.refresh(key, replace(page(), fetched_at=99.0))
    newer = CachedPage.of(b"other body", "text/html", "http://127.0.0.1:1/simple/pkg/", 50.0)
    cache.put(key, newer)
    assert cache.get(key) == newer
    cache.delete(key)
    assert cache.get(key) is None
    cache.put(key, page())
    assert cache.get(key) == page()  # the deleted entry's refresh went with it
    cache.close()
