"""Makes the file store of a proxy from its settings: the store's policy over the blob
backend the settings name (local disk today; a new backend adds its branch here)."""

from __future__ import annotations

from proxy.config import Settings
from proxy.store.file_store import FileStore

# The store's folder in the cache directory (README "On-disk layout").
STORE_DIR = "store"


def make_file_store(settings: Settings) -> FileStore:
    """The file store under the cache directory, bounded by `max_size` (0: unbounded)."""
    limit = settings.max_size if settings.max_size > 0 else None
    return FileStore(settings.cache_dir / STORE_DIR, limit)
