"""In-memory memos bounded by weight: about the bytes their entries hold, not their count.

A count bound lets a few huge pages (a 20k-file project parses into hundreds of MB of
objects) or many mid-sized ones take all memory; a weight bound does not. Evicted entries
are rebuilt from the page cache on disk when asked for again.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol, TypeVar

import cachetools


class Weighted(Protocol):
    @property
    def weight(self) -> int: ...


K = TypeVar("K", bound=Hashable)
W = TypeVar("W", bound=Weighted)


def _weight_of(entry: Weighted) -> int:
    return max(entry.weight, 1)


def weighted_lru(max_weight: int) -> cachetools.LRUCache[K, W]:
    """An LRU memo holding entries of at most `max_weight` in all."""
    return cachetools.LRUCache(max_weight, getsizeof=_weight_of)


def remember(memo: cachetools.LRUCache[K, W], key: K, value: W) -> None:
    """Memoise `value`, unless it alone is over the memo's bound (then it is not kept)."""
    try:
        memo[key] = value
    except ValueError:
        memo.pop(key, None)
