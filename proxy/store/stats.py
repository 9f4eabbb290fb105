"""The file store's figures, as one snapshot for metrics."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class StoreStats:
    """A snapshot of the store's figures for metrics."""

    total_bytes: int
    file_count: int
    downloads_in_flight: int
    bytes_from_upstream: int
    evictions: int
    hash_mismatches: int
    size_mismatches: int
    upstream_failures: int
    storage_failures: int
