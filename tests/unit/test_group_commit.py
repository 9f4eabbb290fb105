"""The store index's grouped commits: files that finish together share one durable commit,
every caller returns once its own record is committed, and a failure reaches the callers of
its group only. The index re-reads its totals when another connection (an import beside a
serving proxy) committed files."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from proxy.store.file_store import ExpectedFile, FileStore, SourceResponse
from proxy.store.group_commit import GroupCommit
from proxy.store.index import IndexEntry, StoreIndex


def _entry(n: int, size: int = 10) -> IndexEntry:
    return IndexEntry(f"sha256-{n:064x}", size, f"{n:064x}", n + 1)


async def test_files_finishing_together_share_commits(tmp_path: Path) -> None:
    index = StoreIndex(tmp_path / "index.sqlite3")
    groups: list[int] = []

    async def commit(entries: list[IndexEntry], accesses: Mapping[str, int]) -> None:
        groups.append(len(entries))
        await asyncio.to_thread(index.add_many, entries, accesses)

    commits = GroupCommit(commit)
    await asyncio.gather(*(commits.add(_entry(n), {}) for n in range(50)))
    assert sum(groups) == 50
    assert len(groups) < 50  # files that finish together go in one commit
    assert (index.file_count, index.total_bytes) == (50, 500)
    assert index.entry(_entry(7).key) == _entry(7)
    index.close()


async def test_a_failed_commit_fails_its_own_group_only() -> None:
    calls = 0

    async def commit(entries: list[IndexEntry], accesses: Mapping[str, int]) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise OSError("disk full")

    commits = GroupCommit(commit)
    first = asyncio.ensure_future(commits.add(_entry(1), {}))
    await asyncio.sleep(0)  # the first group is committing
    later = [asyncio.ensure_future(commits.add(_entry(n), {})) for n in range(2, 5)]
    with pytest.raises(OSError, match="disk full"):
        await first
    await asyncio.gather(*later)
    assert calls == 2


def test_one_commit_records_a_key_twice_and_counts_it_once(tmp_path: Path) -> None:
    index = StoreIndex(tmp_path / "index.sqlite3")
    index.add_many([_entry(1, 10), _entry(1, 30), _entry(2, 5)], {})
    assert (index.file_count, index.total_bytes) == (2, 35)
    index.close()


def test_totals_are_read_again_after_another_connection_committed(tmp_path: Path) -> None:
    serving = StoreIndex(tmp_path / "index.sqlite3")
    serving.add(*_fields(_entry(1, 100)))
    importing = StoreIndex(tmp_path / "index.sqlite3")
    importing.add_many([_entry(2, 1000), _entry(3, 10_000)], {})
    importing.close()
    assert (serving.file_count, serving.total_bytes) == (1, 100)  # not yet: no write since
    serving.add(*_fields(_entry(4, 1)))
    assert (serving.file_count, serving.total_bytes) == (4, 11_101)
    serving.close()


def _fields(entry: IndexEntry) -> tuple[str, int, str, int]:
    return entry.key, entry.size, entry.sha256, entry.last_access


async def test_a_store_keeps_many_concurrent_downloads_in_grouped_commits(
    tmp_path: Path,
) -> None:
    bodies = [bytes([n]) * (1000 + n) for n in range(40)]

    def source(body: bytes) -> SourceResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield body

        return SourceResponse(len(body), chunks())

    async with FileStore(tmp_path / "store", None) as store:
        downloads = []
        for body in bodies:
            digest = hashlib.sha256(body).hexdigest()

            async def opened(body: bytes = body) -> SourceResponse:
                return source(body)

            downloads.append(
                store.download(
                    f"sha256-{digest}", opened, ExpectedFile({"sha256": digest}, len(body))
                )
            )
        await asyncio.gather(*(d.result() for d in downloads))
        assert store.stats.file_count == 40
        assert store.stats.total_bytes == sum(len(b) for b in bodies)
    async with FileStore(tmp_path / "store", None) as reopened:
        for body in bodies:
            stored = await reopened.lookup(f"sha256-{hashlib.sha256(body).hexdigest()}")
            assert stored is not None and stored.size == len(body)
