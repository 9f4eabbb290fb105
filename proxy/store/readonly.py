"""A read-only view of a local-disk file store that another process may be serving (no
lock taken).

Export reads complete files through it while a proxy keeps running: the index is read over
a `mode=ro` SQLite connection (WAL lets it read beside the writer), and a file whose record
exists but whose bytes are gone (evicted meanwhile) is simply not there.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from proxy.store.index import INDEX_FORMAT_VERSION
from proxy.store.layout import StoreLayout
from proxy.store.local_disk import LocalDiskBackend


@dataclass(frozen=True)
class ReadOnlyFile:
    """A complete file of the store, on local disk."""

    path: Path
    size: int
    sha256: str


class ReadOnlyStore:
    def __init__(self, root: Path) -> None:
        self._layout = StoreLayout(root)
        self._files = LocalDiskBackend(root)
        self._db: sqlite3.Connection | None = None
        if self._layout.index_path.exists():
            self._db = sqlite3.connect(
                f"file:{self._layout.index_path}?mode=ro", uri=True, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout=5000")
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version not in (0, INDEX_FORMAT_VERSION):
                self._db.close()
                self._db = None

    def lookup(self, key: str) -> ReadOnlyFile | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT size, sha256 FROM files WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        path = self._files.path_of(key)
        try:
            if os.stat(path).st_size != row[0]:
                return None
        except OSError:
            return None
        return ReadOnlyFile(path, row[0], row[1])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
