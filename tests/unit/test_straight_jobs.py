"""The worker's two jobs of a straight page: the served JSON at once, the page's split form
kept for the merged page until fetched (a few pages at most)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.pages import straight_jobs
from proxy.pages.served_json import made_page
from proxy.pages.straight_jobs import (
    HELD_PAGES,
    StraightJobs,
    _write_over,
    pieces_job,
    served_job,
)
from proxy.pages.workers import PageWorkers

PAGE_URL = "https://index.example/simple/pkg/"


def body(version: int) -> bytes:
    entry = {"filename": f"pkg-{version}.tar.gz", "url": f"pkg-{version}.tar.gz", "hashes": {}}
    return json.dumps({"meta": {"api-version": "1.1"}, "files": [entry]}).encode()


def test_the_served_page_is_written_and_its_pieces_are_kept_until_fetched_once(
    tmp_path: Path,
) -> None:
    made = made_page(body(1), PAGE_URL, "pkg", "../../")
    assert made is not None
    page_file = tmp_path / "page"
    page_file.write_bytes(body(1))
    assert served_job("pkg 1", str(page_file), PAGE_URL, "pkg", "../../") is True
    assert page_file.read_bytes() == made.served
    assert pieces_job("pkg 1") == (made.head, made.pieces)
    assert pieces_job("pkg 1") is None


def test_a_page_left_to_the_general_path_keeps_nothing(tmp_path: Path) -> None:
    page_file = tmp_path / "page"
    page_file.write_bytes(b"[]")
    assert served_job("bad", str(page_file), PAGE_URL, "pkg", "../../") is False
    assert page_file.read_bytes() == b"[]"
    assert pieces_job("bad") is None


def test_only_the_newest_pages_are_kept(tmp_path: Path) -> None:
    straight_jobs._held.clear()
    tokens = [f"pkg {n}" for n in range(HELD_PAGES + 1)]
    for number, token in enumerate(tokens):
        page_file = tmp_path / token
        page_file.write_bytes(body(number))
        assert served_job(token, str(page_file), PAGE_URL, "pkg", "../../") is True
    assert pieces_job(tokens[0]) is None  # the oldest was dropped
    assert all(pieces_job(token) is not None for token in tokens[1:])


async def test_the_server_side_reads_the_page_and_leaves_no_file(tmp_path: Path) -> None:
    workers = PageWorkers()
    try:
        jobs = StraightJobs(workers, tmp_path)
        made = made_page(body(1), PAGE_URL, "pkg", "../../")
        assert made is not None
        assert await jobs.served("pkg 1", body(1), PAGE_URL, "pkg", "../../") == made.served
        assert await jobs.pieces("pkg 1") == (made.head, made.pieces)
        assert await jobs.served("bad", b"[]", PAGE_URL, "pkg", "../../") is None
        assert list(tmp_path.iterdir()) == []
    finally:
        workers.close()


def test_a_job_whose_file_was_removed_leaves_no_file(tmp_path: Path) -> None:
    page_file = tmp_path / "page"
    with pytest.raises(FileNotFoundError):
        _write_over(str(page_file), b"served")
    assert not page_file.exists()


def test_a_shorter_page_replaces_the_whole_file(tmp_path: Path) -> None:
    page_file = tmp_path / "page"
    page_file.write_bytes(b"a longer upstream page")
    _write_over(str(page_file), b"served")
    assert page_file.read_bytes() == b"served"
