"""The file store's index: which complete files exist, their sizes and when each was last used.

One SQLite database (`index.sqlite3`, WAL mode, format version in `PRAGMA user_version`):

    files(key TEXT PRIMARY KEY, size INTEGER, sha256 TEXT, last_access INTEGER)

`last_access` is a strictly increasing count of nanoseconds since the epoch (`AccessClock`),
so the least recently used order is exact and survives restarts. The total size and the
file count are read once at open (`SELECT SUM(size)`, no directory scan) and then kept up
to date by this class; when another connection (an `import` beside a serving proxy) has
committed since, the next write reads them again (`PRAGMA data_version`).

Threads: every method that writes runs on the store's single index thread; `entry` reads
through its own connection and may be called from the event loop at the same time (WAL
lets one reader and one writer work together, the reader sees only committed rows).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proxy.store.errors import StoreFormatError

INDEX_FORMAT_VERSION = 1
# How many least recently used records one eviction round considers at a time.
EVICTION_BATCH = 64

_SCHEMA = """
CREATE TABLE files (
    key TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    last_access INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX files_by_last_access ON files (last_access);
"""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One complete file as the index records it."""

    key: str
    size: int
    sha256: str
    last_access: int


class AccessClock:
    """Hands out strictly increasing access stamps (ns since the epoch) for LRU order."""

    def __init__(self, last: int = 0) -> None:
        self._last = last

    def tick(self) -> int:
        self._last = max(self._last + 1, time.time_ns())
        return self._last


class StoreIndex:
    """The SQLite index of complete files, with the running total size and file count."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer = self._connect(path)
        try:
            self._writer.execute("PRAGMA journal_mode=WAL")
            # A committed row must be on disk before its file is renamed into place.
            self._writer.execute("PRAGMA synchronous=FULL")
            self._create_or_check_schema()
            count, total, newest = self._writer.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(last_access), 0) FROM files"
            ).fetchone()
            self._reader = self._connect(path)
            self._reader.execute("PRAGMA query_only=1")
        except sqlite3.DatabaseError as exc:
            self._writer.close()
            raise StoreFormatError(f"cannot read cache index {path}: {exc}") from exc
        except BaseException:
            self._writer.close()
            raise
        self.file_count: int = count
        self.total_bytes: int = total
        self.newest_access: int = newest
        (self._data_version,) = self._writer.execute("PRAGMA data_version").fetchone()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    def _create_or_check_schema(self) -> None:
        (version,) = self._writer.execute("PRAGMA user_version").fetchone()
        if version == INDEX_FORMAT_VERSION:
            return
        if version != 0:
            raise StoreFormatError(
                f"cache index {self._path} has format version {version};"
                f" this proxy reads version {INDEX_FORMAT_VERSION}"
            )
        self._writer.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._writer.execute(statement)
        self._writer.execute(f"PRAGMA user_version={INDEX_FORMAT_VERSION}")
        self._writer.execute("COMMIT")

    def entry(self, key: str) -> IndexEntry | None:
        """The recorded file for `key`, if any (reader connection)."""
        row = self._reader.execute(
            "SELECT size, sha256, last_access FROM files WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        size, sha256, last_access = row
        return IndexEntry(key, size, sha256, last_access)

    def add(self, key: str, size: int, sha256: str, last_access: int) -> None:
        """Record a complete file (replacing any older record of the same key), durably."""
        self.add_many([IndexEntry(key, size, sha256, last_access)], {})

    def add_many(self, entries: list[IndexEntry], accesses: Mapping[str, int]) -> None:
        """Record complete files and access stamps in one durable commit (one fsync of the
        log for the whole group, not one per file)."""
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            self._read_totals_if_others_wrote()
            files = size = 0
            for entry in entries:
                # Read inside the transaction: a key twice in one group sees its first row.
                old = self._writer.execute(
                    "SELECT size FROM files WHERE key = ?", (entry.key,)
                ).fetchone()
                self._writer.execute(
                    "INSERT OR REPLACE INTO files (key, size, sha256, last_access)"
                    " VALUES (?, ?, ?, ?)",
                    (entry.key, entry.size, entry.sha256, entry.last_access),
                )
                files += old is None
                size += entry.size - (0 if old is None else old[0])
            self._update_accesses(accesses)
            self._writer.execute("COMMIT")
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self.file_count += files
        self.total_bytes += size

    def _read_totals_if_others_wrote(self) -> None:
        """Re-read the totals when another connection committed since (`import` adds files
        to a cache a proxy is serving); inside a write transaction, so they stay exact."""
        (version,) = self._writer.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._data_version = version
            self.file_count, self.total_bytes = self._writer.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files"
            ).fetchone()

    def remove(self, keys: list[str]) -> list[IndexEntry]:
        """Forget the files of `keys`; return the records that were actually removed."""
        removed: list[IndexEntry] = []
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            self._read_totals_if_others_wrote()
            for key in keys:
                row = self._writer.execute(
                    "SELECT size, sha256, last_access FROM files WHERE key = ?", (key,)
                ).fetchone()
                if row is not None:
                    self._writer.execute("DELETE FROM files WHERE key = ?", (key,))
                    removed.append(IndexEntry(key, *row))
            self._writer.execute("COMMIT")
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self.file_count -= len(removed)
        self.total_bytes -= sum(entry.size for entry in removed)
        return removed

    def record_accesses(self, accesses: Mapping[str, int]) -> None:
        """Store a batch of access stamps (key -> stamp); keys no longer indexed are skipped."""
        if not accesses:
            return
        self._writer.execute("BEGIN IMMEDIATE")
        try:
            self._update_accesses(accesses)
            self._writer.execute("COMMIT")
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise

    def _update_accesses(self, accesses: Mapping[str, int]) -> None:
        self._writer.executemany(
            "UPDATE files SET last_access = MAX(last_access, ?) WHERE key = ?",
            [(stamp, key) for key, stamp in accesses.items()],
        )

    def least_recently_used(self, limit: int, keep: str | None = None) -> list[IndexEntry]:
        """Up to `limit` records, least recently used first, never the one keyed `keep`."""
        rows = self._writer.execute(
            "SELECT key, size, sha256, last_access FROM files"
            " WHERE key IS NOT ? ORDER BY last_access, key LIMIT ?",
            (keep, limit),
        ).fetchall()
        return [IndexEntry(*row) for row in rows]

    def eviction_victims(self, excess: int, keep: str | None) -> list[str]:
        """The least recently used keys (never `keep`) whose sizes cover `excess` bytes."""
        victims: list[str] = []
        for entry in self.least_recently_used(EVICTION_BATCH, keep):
            victims.append(entry.key)
            excess -= entry.size
            if excess <= 0:
                break
        return victims

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
