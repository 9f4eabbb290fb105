"""Hot-path helpers: weight-bounded memos, the cheap scan that lets pages without variants
skip the variant machinery (and that it is right to), the fast `DistFile.with_url`, and one
filename parse per file for the variant data and every view."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.pages.cache import PageCache
from proxy.simple.filenames import parse_dist_filename
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.memo import remember, weighted_lru
from proxy.upstreams.projects import MergedProject
from proxy.upstreams.variant_metadata import VariantMetadata, may_have_variants
from proxy.variants import views
from proxy.variants.properties import VariantProperty
from proxy.variants.rewrite import legacy_view, native_view


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


def test_with_url_is_replace_for_every_field() -> None:
    values = {f.name: f"value-of-{f.name}" for f in dataclasses.fields(DistFile)}
    dist = DistFile(**values)  # type: ignore[arg-type]
    assert dist.with_url("u", "p") == dataclasses.replace(dist, url="u", provenance="p")


def test_a_page_without_variant_names_is_its_own_legacy_and_native_view() -> None:
    page = _page(
        "pkg-1.0.tar.gz",
        "pkg-1.0-cp312-cp312-linux_x86_64.whl",
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.0.zip",
        "pkg-1.0.exe",
    )
    assert not may_have_variants(page)
    fingerprints = (None, (), (VariantProperty("x86_64", "level", "v3"),))
    for view in (legacy_view, native_view):
        for fingerprint in fingerprints:
            assert view(page, {}, fingerprint).page.files == page.files


async def test_a_page_with_variants_has_each_filename_parsed_once_for_every_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variant data's versions and any number of views share one classification."""
    page = _page(
        "pkg-1.0.tar.gz",
        "pkg-1.0-cp312-cp312-linux_x86_64-x86v3.whl",
        "pkg-1.0-cp312-cp312-linux_x86_64.whl",
        "pkg-2.0-py3-none-any.whl",
    )
    parsed: list[str] = []

    def counting_parse(filename: str) -> object:
        parsed.append(filename)
        return parse_dist_filename(filename)

    monkeypatch.setattr(views, "parse_dist_filename", counting_parse)
    merged = MergedProject(
        name=NormalizedName("pkg"),
        page=page,
        files={},
        version="up:1",
        stale=False,
        fresh_until=10**10,
    )
    metadata = VariantMetadata(PageCache(tmp_path), build_missing=False)
    variants = await metadata.for_project(merged)
    for fingerprint in (None, (), (VariantProperty("x86_64", "level", "v3"),)):
        legacy_view(page, variants.by_version, fingerprint, variants.classified)
        native_view(page, variants.by_version, fingerprint, variants.classified)
    assert sorted(parsed) == sorted(d.filename for d in page.files)
    # Classified files of another page are not used for this one.
    other = _page("pkg-1.0-cp312-cp312-linux_x86_64-x86v3.whl")
    view = legacy_view(other, variants.by_version, None, variants.classified)
    assert view.page.files == ()
