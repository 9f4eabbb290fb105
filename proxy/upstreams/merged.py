"""A project's page merged from every upstream's (pure): each file once, in priority order,
with where it comes from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from proxy.simple.filenames import FilenameError, parse_dist_filename
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.page_loader import LoadedPage
from proxy.upstreams.source import UpstreamSource
from proxy.urls.links import file_id

# About the memory a parsed page takes: some 4 times its body.
PARSED_WEIGHT_PER_BYTE = 4


@dataclass(frozen=True)
class Located:
    """A listed upstream file: where it comes from and what the page says about it."""

    dist: DistFile
    upstream: UpstreamSource


@dataclass(frozen=True)
class MergedProject:
    name: NormalizedName
    page: ProjectPage
    files: Mapping[str, Located]  # file id -> listed file
    version: str  # changes whenever any upstream's bytes change
    stale: bool
    fresh_until: float
    warnings: tuple[str, ...] = ()
    weight: int = 0  # about the memory it holds (see MEMO_WEIGHT)


def merge_pages(
    project: NormalizedName,
    pages: Sequence[tuple[LoadedPage, ProjectPage]],
    warnings: tuple[str, ...],
) -> MergedProject:
    """The project's page from every upstream's, in priority order: each file name once
    (the first upstream's), PEP 700 versions when any upstream gives them."""
    merger = Merger(has_versions=any(page.versions is not None for _, page in pages))
    for item, page in pages:
        merger.add_files(item, page.files)
        merger.add_versions(page)
    return merger.merged(project, pages, warnings)


class Merger:
    """`merge_pages` in steps: the files of each page in priority order (in as many parts as
    wanted), then each page's versions, then the merged page."""

    def __init__(self, *, has_versions: bool) -> None:
        # PEP 700 versions (an ordered set) only when some upstream gives them; pages without
        # them then contribute the versions of their files.
        self._has_versions = has_versions
        self._versions: dict[str, None] = {}
        self._files: dict[str, Located] = {}
        self._seen_names: set[str] = set()
        self._ordered: list[DistFile] = []

    def add_files(self, item: LoadedPage, dists: Iterable[DistFile]) -> None:
        for dist in dists:
            if dist.filename in self._seen_names:
                continue  # a higher-priority upstream already lists this file
            self._seen_names.add(dist.filename)
            self._ordered.append(dist)
            self._files.setdefault(file_id(dist), Located(dist, item.upstream))

    def add_versions(self, page: ProjectPage) -> None:
        if self._has_versions:
            listed = page.versions if page.versions is not None else _file_versions(page)
            self._versions.update(dict.fromkeys(listed))

    def merged(
        self,
        project: NormalizedName,
        pages: Sequence[tuple[LoadedPage, ProjectPage]],
        warnings: tuple[str, ...],
    ) -> MergedProject:
        first = pages[0][1]
        merged_page = ProjectPage(
            name=project,
            files=tuple(self._ordered),
            versions=tuple(self._versions) if self._has_versions else None,
            api_version=first.api_version,
            extra=first.extra,
        )
        return MergedProject(
            name=project,
            page=merged_page,
            files=self._files,
            version=version_of([item for item, _ in pages]),
            stale=any(item.stale for item, _ in pages),
            fresh_until=min(item.fresh_until for item, _ in pages),
            warnings=warnings,
            weight=sum(len(item.cached.body) for item, _ in pages) * PARSED_WEIGHT_PER_BYTE,
        )


def version_of(loaded: Sequence[LoadedPage]) -> str:
    """Changes whenever any upstream's page bytes change."""
    return "+".join(f"{item.upstream.name}:{item.cached.digest}" for item in loaded)


def _file_versions(page: ProjectPage) -> list[str]:
    """The versions a page without PEP 700 `versions` lists files of (from their names)."""
    versions = []
    for dist in page.files:
        try:
            parsed = parse_dist_filename(dist.filename)
        except FilenameError:
            continue
        if parsed is not None:
            versions.append(parsed.version)
    return versions
