"""Weight-bounded memos, and the cheap scan that lets pages without variants skip the
variant machinery."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.simple.model import DistFile, ProjectPage
from proxy.upstreams.memo import remember, weighted_lru
from proxy.upstreams.variant_metadata import may_have_variants


@dataclass(frozen=True)
class Entry:
    weight: int


def test_a_weighted_memo_evicts_the_least_recently_used_by_weight_not_count() -> None:
    memo = weighted_lru(100)
    for key in "abc":
        remember(memo, key, Entry(40))
    assert sorted(memo) == ["b", "c"]  # a went: 120 > 100
    memo.get("b")
    remember(memo, "d", Entry(40))
    assert sorted(memo) == ["b", "d"]  # c was the least recently used


def test_an_entry_heavier_than_the_whole_memo_is_not_kept_and_drops_its_old_value() -> None:
    memo = weighted_lru(100)
    remember(memo, "a", Entry(10))
    remember(memo, "a", Entry(1000))
    assert "a" not in memo
    remember(memo, "b", Entry(0))  # weightless entries still count as 1
    assert memo.currsize == 1


def _page(*names: str) -> ProjectPage:
    return ProjectPage(name="pkg", files=tuple(DistFile(filename=n, url=n) for n in names))


def test_only_pages_with_a_labelled_wheel_or_a_variants_json_may_have_variants() -> None:
    assert not may_have_variants(_page("pkg-1.0.tar.gz", "pkg-1.0-cp312-cp312-linux_x86_64.whl"))
    assert may_have_variants(_page("pkg-1.0-cp312-cp312-linux_x86_64-x86v3.whl"))
    assert may_have_variants(_page("pkg-1.0-variants.json"))
