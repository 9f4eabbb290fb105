"""The file store's own places in a cache root, and the cache keys that name its files.

Layout of a cache root (format version 1):

    <root>/lock                          held (flock) by the one process using the store
    <root>/index.sqlite3                 the index of complete files (SQLite, WAL mode)
    <root>/tmp/<key>.<random>.part       downloads in progress; emptied at every open
    <root>/files/v1/...                  the local-disk blob backend's files
                                         (`proxy.store.local_disk`)

Keys are checked against `KEY_PATTERN` (no '/', no '.') before they reach any path.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from pathlib import Path

from proxy.store.errors import InvalidKeyError, StoreLockedError
from proxy.store.index import StoreIndex

# Lowercase letters, digits and '-': no '/', '.', or anything a file system treats specially.
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{7,200}")


def check_key(key: str) -> str:
    """Return `key` when it is a valid cache key, else raise `InvalidKeyError` naming it."""
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKeyError(
            f"invalid cache key {key!r}: expected 8-201 of [a-z0-9-], starting with [a-z0-9]"
        )
    return key


class StoreLayout:
    """The store's paths in one cache root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.index_path = root / "index.sqlite3"
        self.lock_path = root / "lock"

    def new_tmp_path(self, key: str) -> Path:
        """A fresh, unused name for a partial download of `key`."""
        return self.tmp_dir / f"{check_key(key)}.{secrets.token_hex(8)}.part"


def take_root(layout: StoreLayout) -> tuple[int, StoreIndex]:
    """Lock the cache root (creating it), empty `tmp/`, open the index (blocking).

    Returns the lock's file descriptor (held until closed) and the index.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(layout.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        raise StoreLockedError(f"cache directory {layout.root} is in use") from None
    try:
        layout.tmp_dir.mkdir(exist_ok=True)
        _empty_directory(layout.tmp_dir)
        return lock_fd, StoreIndex(layout.index_path)
    except BaseException:
        os.close(lock_fd)
        raise


def _empty_directory(directory: Path) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
