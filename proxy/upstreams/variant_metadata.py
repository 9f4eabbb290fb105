"""Each version's variants.json, obtained for the page rewriter (shell).

A listed `{name}-{version}-variants.json` is fetched through the page cache with the
upstream's TTL (PEP 825 says it may change). When none is listed and the config allows it,
one is built from the variant wheels' own `*.dist-info/variant.json`, read with HTTP range
requests and cached. Missing or invalid metadata makes that version's variants incompatible;
the problem is logged once and the page is still served.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from proxy.pages.cache import CachedPage, PageCache, cache_key, is_fresh
from proxy.simple.filenames import (
    may_be_variant_file,
    normalize_version,
    parse_wheel_filename,
    variants_json_filename,
)
from proxy.simple.integrity import ContentCheck, ContentMismatch, ExpectedFile
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.projects import MergedProject
from proxy.upstreams.single_flight import SingleFlight
from proxy.upstreams.source import UpstreamError, UpstreamNotFound, UpstreamSource
from proxy.urls.links import file_id
from proxy.variants.metadata import (
    VariantsConflictError,
    VariantsDoc,
    VariantsJsonError,
    merge_variants_docs,
    parse_variants_json,
    render_variants_json,
)
from proxy.variants.views import (
    ClassifiedFiles,
    VersionVariants,
    classify_files,
    variant_versions,
)

BUILT_URL_SCHEME = "built:"


def built_variants_json(project: str, filename: str) -> DistFile:
    """The stand-in entry of a variants.json the proxy built; its URL is no upstream's."""
    return DistFile(filename=filename, url=f"{BUILT_URL_SCHEME}{project}/{filename}")


def is_built(dist: DistFile) -> bool:
    return dist.url.startswith(BUILT_URL_SCHEME)


log = logging.getLogger("variant_proxy")

# Reads a listed wheel's `*.dist-info/variant.json` (None when it has none).
MemberReader = Callable[[UpstreamSource, DistFile], Awaitable[bytes | None]]

MAX_VARIANTS_JSON_BYTES = 8 * 1024 * 1024
FETCH_CONCURRENCY = 16


@dataclass(frozen=True)
class ProjectVariants:
    by_version: Mapping[str, VersionVariants]
    digest: str  # changes whenever any version's metadata changes
    raw: Mapping[str, bytes]  # variants.json filename -> its bytes (for the native view)
    # Variants.json files the proxy built from wheels (no upstream has them): file id -> bytes.
    built: Mapping[str, bytes] = field(default_factory=dict)
    # The page's files classified once, for the views (valid for that page's files only).
    classified: ClassifiedFiles | None = None


NO_VARIANTS = ProjectVariants({}, "none", {})


@dataclass(frozen=True)
class _Memo:
    page_version: str
    expires: float | None  # None: valid as long as the page bytes are the same
    variants: ProjectVariants

    def valid(self, now: float) -> bool:
        return self.expires is None or now < self.expires


def may_have_variants(page: ProjectPage) -> bool:
    """False when no file can be a variant wheel or a variants.json: a cheap scan of the
    names, so the many pages without variants skip classifying every file."""
    return any(may_be_variant_file(dist.filename) for dist in page.files)


def variants_cache_key(upstream: str, source: DistFile) -> str:
    """The page-cache key of a listed variants.json (content-addressed when hashed)."""
    sha256 = source.hashes.get("sha256")
    return cache_key("variants", upstream, f"{source.url}#{sha256}" if sha256 else source.url)


def variant_member_cache_key(dist: DistFile) -> str:
    """The page-cache key of a wheel's own `*.dist-info/variant.json`."""
    return cache_key("variant-member", "", file_id(dist))


def _project_variants(
    results: Mapping[str, tuple[VersionVariants, bytes | None]],
) -> ProjectVariants:
    """Each version's metadata and variants.json bytes, as one versioned value."""
    by_version = {version: info for version, (info, _) in results.items()}
    listed = [(info.source, body) for info, body in results.values()]
    raw = {
        source.filename: body for source, body in listed if source is not None and body is not None
    }
    built = {
        file_id(source): body
        for source, body in listed
        if source is not None and body is not None and is_built(source)
    }
    digest = hashlib.sha256(
        repr(
            sorted(
                (version, hashlib.sha256(body).hexdigest() if body else info.problem)
                for version, (info, body) in results.items()
            )
        ).encode()
    ).hexdigest()[:16]
    return ProjectVariants(by_version, digest, raw, built)


class VariantMetadata:
    def __init__(
        self,
        page_cache: PageCache,
        *,
        build_missing: bool,
        member_reader: MemberReader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = page_cache
        self._build_missing = build_missing
        self._member_reader = member_reader
        self._clock = clock
        self._memo: dict[str, _Memo] = {}
        self._logged: set[tuple[str, str, str]] = set()
        self._limit = asyncio.Semaphore(FETCH_CONCURRENCY)
        self._flight: SingleFlight[ProjectVariants] = SingleFlight()

    async def for_project(self, merged: MergedProject) -> ProjectVariants:
        """The variant data of a merged page, rebuilt only when the page's bytes changed
        (or, for a variants.json the page gives no sha256 for, when the page expired)."""
        memo = self._memo.get(merged.name)
        if memo is not None and memo.page_version == merged.version and memo.valid(self._clock()):
            return memo.variants
        if not may_have_variants(merged.page):
            self._memo[merged.name] = _Memo(merged.version, None, NO_VARIANTS)
            return NO_VARIANTS
        return await self._flight.run(
            f"{merged.name}\x00{merged.version}\x00{merged.fresh_until}",
            lambda: self._load(merged),
        )

    async def _load(self, merged: MergedProject) -> ProjectVariants:
        classified = classify_files(merged.page.files)
        versions = variant_versions(merged.page, classified)
        results = await asyncio.gather(
            *(self._one_version(merged, version, source) for version, source in versions.items())
        )
        result = replace(
            _project_variants(dict(zip(versions, results, strict=True))), classified=classified
        )
        # Content-addressed (a sha256 on the page, nothing built): valid as long as the page.
        timeless = all(
            source is not None and "sha256" in source.hashes and not is_built(source)
            for source in (info.source for info, _ in results)
        )
        self._memo[merged.name] = _Memo(
            merged.version, None if timeless else merged.fresh_until, result
        )
        return result

    def holds_listed(self, upstream: UpstreamSource, source: DistFile) -> bool:
        """Whether the page cache holds this listed variants.json."""
        return self._cache.get(variants_cache_key(upstream.name, source)) is not None

    def forget(self, project: NormalizedName) -> None:
        self._memo.pop(project, None)

    def _problem(self, project: str, version: str, problem: str) -> VersionVariants:
        if (project, version, problem) not in self._logged:
            self._logged.add((project, version, problem))
            log.warning(
                '{"event":"variants-unusable","project":"%s","version":"%s","problem":"%s"}',
                project,
                version,
                problem.replace('"', "'"),
            )
        return VersionVariants(None, problem)

    async def _one_version(
        self, merged: MergedProject, version: str, source: DistFile | None
    ) -> tuple[VersionVariants, bytes | None]:
        if source is None:
            if not self._build_missing:
                return self._problem(merged.name, version, "no variants.json listed"), None
            return await self._built(merged, version)
        located = merged.files.get(file_id(source))
        if located is None:  # pragma: no cover - variant_versions only returns listed files
            return self._problem(merged.name, version, "variants.json not listed"), None
        try:
            body = await self.fetch_listed(located.upstream, source)
        except (UpstreamError, UpstreamNotFound, ContentMismatch) as exc:
            return self._problem(merged.name, version, f"variants.json unusable: {exc}"), None
        try:
            doc = parse_variants_json(body)
        except VariantsJsonError as exc:
            problem = f"invalid {source.filename}: {exc}"
            return VersionVariants(
                None, self._problem(merged.name, version, problem).problem, source
            ), body
        return VersionVariants(doc, None, source), body

    async def fetch_listed(self, upstream: UpstreamSource, source: DistFile) -> bytes:
        """A listed variants.json, checked against the page's hashes and size.

        With a sha256 on the page the entry is content-addressed (a republished file has a new
        hash, so a new entry, and never expires); without one it lives for the upstream's TTL.
        """
        url = source.url
        sha256 = source.hashes.get("sha256")
        key = variants_cache_key(upstream.name, source)
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and (sha256 or is_fresh(cached, upstream.ttl, now)):
            return cached.body
        try:
            async with self._limit:
                body = await upstream.fetch_bytes(url)
        except UpstreamError:
            if cached is not None:
                return cached.body
            raise
        if len(body) > MAX_VARIANTS_JSON_BYTES:
            raise UpstreamError(f"variants.json at upstream {upstream.name} is too large")
        check = ContentCheck(source.filename, ExpectedFile(source.hashes, source.size))
        check.update(body)
        check.verify()  # raises HashMismatch / SizeMismatch: never trust bytes the page disowns
        self._cache.put(key, CachedPage.of(body, "application/json", url, now))
        return body

    async def _built(
        self, merged: MergedProject, version: str
    ) -> tuple[VersionVariants, bytes | None]:
        """A variants.json built from the variant wheels' own variant.json files."""
        wheels: list[DistFile] = []
        distribution = ""
        for dist in merged.page.files:
            if not dist.filename.endswith(".whl"):
                continue
            try:
                wheel = parse_wheel_filename(dist.filename)
            except ValueError:
                continue
            if wheel.is_variant and normalize_version(wheel.version) == version:
                wheels.append(dist)
                distribution = wheel.distribution
        info = await self._merged_from_wheels(merged, version, wheels)
        if info.doc is None:
            return info, None
        source = built_variants_json(merged.name, variants_json_filename(distribution, version))
        return VersionVariants(info.doc, None, source), render_variants_json(info.doc)

    async def _merged_from_wheels(
        self, merged: MergedProject, version: str, wheels: list[DistFile]
    ) -> VersionVariants:
        reader = self._member_reader
        if reader is None:  # pragma: no cover - the app always wires a reader
            return self._problem(merged.name, version, "cannot read wheels")
        docs: list[VariantsDoc] = []
        for dist in wheels:
            key = variant_member_cache_key(dist)
            cached = self._cache.get(key)
            body: bytes | None = cached.body if cached is not None else None
            if cached is None:
                located = merged.files[file_id(dist)]
                try:
                    async with self._limit:
                        body = await reader(located.upstream, dist)
                except (UpstreamError, UpstreamNotFound, ValueError) as exc:
                    return self._problem(
                        merged.name, version, f"cannot read variant.json of {dist.filename}: {exc}"
                    )
                if body is None:
                    return self._problem(
                        merged.name, version, f"{dist.filename} has no *.dist-info/variant.json"
                    )
                if "sha256" in dist.hashes:  # content-addressed: the member never changes
                    self._cache.put(
                        key,
                        CachedPage.of(body, "application/json", dist.url, self._clock()),
                    )
            try:
                docs.append(parse_variants_json(body or b""))
            except VariantsJsonError as exc:
                return self._problem(
                    merged.name, version, f"invalid variant.json in {dist.filename}: {exc}"
                )
        try:
            return VersionVariants(merge_variants_docs(docs))
        except (VariantsJsonError, VariantsConflictError) as exc:
            return self._problem(merged.name, version, f"variant.json files conflict: {exc}")
