"""One way from a client to a page: fingerprint -> project view -> variants -> view -> links.

The page routes, `variant-proxy explain` and the mirror (through the page and file routes of
an in-process proxy) all go through `Pipeline`, so the fingerprint source order
(`proxy.variants.sources`) and the order of the steps exist once:

1. `fingerprints`: what the request (or the command line, in the same terms) says about
   the client, resolved by the configured source order;
2. `project`: the merged project view of every upstream (cached; offline, only the files
   the cache holds) and the variant metadata of its versions (cached); for a project that
   backend indexes serve and a client with a fingerprint, also the backend builds chosen
   for it;
3. `view`: the legacy or native view for the fingerprint (pure); backend builds go in as
   synthesised variants of the public versions and come out under their real names;
4. `served_page`: that view's files pointed at the proxy's own URLs (pure), ready to render.

`locate` answers the other question the routes ask of the same data: which listed file
(and from which upstream) a file id of a project is; the proxy fetches nothing else.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

import cachetools

from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.backends import BackendIndexes, Selection
from proxy.upstreams.projects import Located, MergedProject, ProjectNotFound, ProjectPages
from proxy.upstreams.source import redact
from proxy.upstreams.variant_metadata import NO_VARIANTS, ProjectVariants, VariantMetadata
from proxy.urls.links import file_href, file_id, variants_json_href
from proxy.variants.backend_variants import restore_names, synthesize
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.metadata import subset_variants_json
from proxy.variants.rewrite import View, legacy_view, native_view
from proxy.variants.sources import FingerprintResolver

# A project that only backends have: no upstream page, no variant metadata of its own.
EMPTY_VARIANTS = ProjectVariants({}, "-", {})
# A page made only from backend pages is fresh this long (their own pages have their TTL).
BACKEND_ONLY_FRESH_S = 60.0
# Served variants.json subsets kept, by (file id, labels, upstream bytes).
SUBSET_CACHE_ENTRIES = 256


class FileNotListed(Exception):
    """A file id that no page of the project lists (the proxy fetches nothing else)."""

    def __init__(self, project: str, ident: str) -> None:
        super().__init__(f"no file {ident} is listed for project {project}")


@dataclass(frozen=True)
class ProjectData:
    """What one project's pages are made from, as one versioned input."""

    name: NormalizedName
    merged: MergedProject | None  # None only when backends alone have the project
    variants: ProjectVariants
    # The backend builds chosen for the client (a backend project, a client with a
    # fingerprint); None for every other page.
    backends: Selection | None = None

    @property
    def version(self) -> str:
        """Changes whenever the upstream bytes of the page, of any variants.json, or of the
        backend pages change (for rendered-page caches)."""
        parts = [self.merged.version if self.merged is not None else "-", self.variants.digest]
        if self.backends is not None:
            parts.append(self.backends.version)
        return "/".join(parts)

    @property
    def has_variants(self) -> bool:
        """False when no version has variant wheels: every fingerprint gets the same view."""
        return self.backends is not None or bool(self.variants.by_version)

    @property
    def stale(self) -> bool:
        merged_stale = self.merged is not None and self.merged.stale
        return merged_stale or (self.backends is not None and self.backends.stale)

    @property
    def fresh_until(self) -> float:
        if self.merged is None:
            return time.time() + BACKEND_ONLY_FRESH_S
        return self.merged.fresh_until

    @property
    def warnings(self) -> tuple[str, ...]:
        """What went wrong upstream while the page was made (for a stale answer's reason)."""
        return self.merged.warnings if self.merged is not None and self.backends is None else ()

    @property
    def page(self) -> ProjectPage:
        """The upstreams' own page (empty when backends alone have the project)."""
        return self.merged.page if self.merged is not None else ProjectPage(self.name, ())


class SubsetCache:
    """Served variants.json subsets, made once per (file, labels): for the native page's
    hash of the file and again for the route that serves it. Big pages are built in worker
    threads, so it is shared between them under a lock."""

    def __init__(self, entries: int = SUBSET_CACHE_ENTRIES) -> None:
        self._subsets: cachetools.LRUCache[tuple[str, tuple[str, ...], bytes], bytes] = (
            cachetools.LRUCache(entries)
        )
        self._lock = threading.Lock()

    def subset(self, ident: str, labels: tuple[str, ...], raw: bytes) -> bytes:
        """The variants.json `raw` (file `ident`) subset to `labels`, as it is served."""
        # The bytes are in the key: a file id from a URL may name other bytes later.
        key = (ident, labels, raw)
        with self._lock:
            body = self._subsets.get(key)
        if body is None:
            body = subset_variants_json(raw, labels)
            with self._lock:
                self._subsets[key] = body
        return body


@dataclass
class Pipeline:
    """The steps from a client to a page, over this proxy's caches and configuration."""

    pages: ProjectPages
    variant_metadata: VariantMetadata
    # Step 1, the fingerprint: `fingerprints.resolve(headers, profile=, spec=, remote=)`.
    fingerprints: FingerprintResolver
    backends: BackendIndexes | None = None
    # Offline with an open store: the merged page less every file the cache does not hold.
    held_only: Callable[[MergedProject], Awaitable[MergedProject]] | None = None
    subsets: SubsetCache = field(default_factory=SubsetCache)

    def backends_serve(self, project: NormalizedName, fingerprint: Fingerprint | None) -> bool:
        """Whether the client's page of `project` is made with backend builds."""
        backends = self.backends
        return fingerprint is not None and backends is not None and backends.serves(project)

    async def project(
        self, project: NormalizedName, fingerprint: Fingerprint | None = None
    ) -> ProjectData:
        """The merged page and its variant metadata, and for a project backends serve the
        builds chosen for `fingerprint` (raises ProjectNotFound, UpstreamError)."""
        if fingerprint is not None and self.backends_serve(project, fingerprint):
            return await self._backend_project(project, fingerprint)
        merged = await self.pages.get(project)
        if self.held_only is not None:
            merged = await self.held_only(merged)
        return ProjectData(project, merged, await self.variant_metadata.for_project(merged))

    async def listed(self, project: NormalizedName) -> ProjectData:
        """The merged page as the upstreams list it, and its variant metadata: what the
        routes of files and variants.json read (never narrowed to what a client sees)."""
        merged = await self.pages.get(project)
        return ProjectData(project, merged, await self.variant_metadata.for_project(merged))

    async def _backend_project(
        self, project: NormalizedName, fingerprint: Fingerprint
    ) -> ProjectData:
        backends = self.backends
        assert backends is not None
        merged: MergedProject | None
        try:
            merged = await self.pages.get(project)
        except ProjectNotFound:
            merged = None
        variants = (
            await self.variant_metadata.for_project(merged)
            if merged is not None
            else EMPTY_VARIANTS
        )
        selection = await backends.select(project, fingerprint.properties)
        if merged is None and not selection.chosen:
            raise ProjectNotFound(project)
        return ProjectData(project, merged, variants, selection)

    async def locate(self, project: NormalizedName, ident: str) -> Located:
        """A file a page of the project lists (or a backend's page), by file id; raises
        FileNotListed when none does, ProjectNotFound when no upstream has the project."""
        located: Located | None = None
        try:
            located = (await self.pages.get(project)).files.get(ident)
        except ProjectNotFound:
            if self.backends is None:
                raise
        if located is None and self.backends is not None:
            located = await self.backends.locate(project, ident)
        if located is None:
            raise FileNotListed(project, ident)
        return located

    @staticmethod
    def view(data: ProjectData, fingerprint: Fingerprint | None, *, native: bool) -> View:
        """The page a client with `fingerprint` sees, with the reasons (pure).

        A page with backend builds is always the legacy view: the builds are shown under
        their real names, one per public version.
        """
        properties = fingerprint.properties if fingerprint is not None else None
        if data.backends is not None:
            synthesised = synthesize(data.page, data.backends.chosen)
            variants = {**data.variants.by_version, **synthesised.variants}
            return restore_names(legacy_view(synthesised.page, variants, properties), synthesised)
        build = native_view if native else legacy_view
        return build(data.page, data.variants.by_version, properties, data.variants.classified)

    def served_page(
        self, data: ProjectData, fingerprint: Fingerprint | None, *, native: bool, root: str
    ) -> ProjectPage:
        """The view with every file pointed at the proxy (pure but for the subset cache);
        `root` is the relative path from the page to the proxy's root (`../../`)."""
        if data.variants is NO_VARIANTS and data.backends is None:
            # No file can be a variant wheel or a variants.json: every view is the page itself.
            return self.proxy_links(data.page, root)
        view = self.view(data, fingerprint, native=native)
        return with_proxy_links(view.page, root, self.subsets, data.variants, view.kept_labels)

    def proxy_links(self, page: ProjectPage, root: str) -> ProjectPage:
        """A page as listed (no view), its files pointed at the proxy."""
        return with_proxy_links(page, root, self.subsets, NO_VARIANTS, {})


def with_proxy_links(
    page: ProjectPage,
    root: str,
    subsets: SubsetCache,
    variants: ProjectVariants,
    kept_labels: Mapping[str, tuple[str, ...]],
) -> ProjectPage:
    """Point every file at the proxy; provenance URLs lose any credentials.

    A variants.json of the native view is served subset to the labels the page lists, so it
    gets its own URL (the labels are in it) and the hash of the bytes actually served.
    """
    files = []
    for dist in page.files:
        labels = kept_labels.get(dist.filename)
        raw = variants.raw.get(dist.filename)
        if labels is not None and raw is not None:
            body = subsets.subset(file_id(dist), labels, raw)
            files.append(
                replace(
                    dist,
                    url=root + variants_json_href(page.name, dist, labels).lstrip("/"),
                    hashes={"sha256": hashlib.sha256(body).hexdigest()},
                    size=len(body),
                    core_metadata=False,
                    provenance=None,
                )
            )
        else:
            provenance = redact(dist.provenance) if dist.provenance else dist.provenance
            files.append(dist.with_url(root + file_href(page.name, dist)[1:], provenance))
    return replace(page, files=tuple(files))
