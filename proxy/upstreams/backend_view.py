"""The legacy view of a project that backends serve (shell): the upstreams' own page and
variants, plus the chosen backend's files per public version as synthesised variants, run
through the ordinary legacy view; backend files keep their real names.

Used by the page routes and by `variant-proxy explain`, so both tell the same story.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName
from proxy.upstreams.backends import BackendIndexes, Selection
from proxy.upstreams.projects import MergedProject, ProjectNotFound, ProjectPages
from proxy.upstreams.variant_metadata import ProjectVariants, VariantMetadata
from proxy.variants.backend_variants import restore_names, synthesize
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.rewrite import View, legacy_view

EMPTY_VARIANTS = ProjectVariants({}, "-", {})


@dataclass(frozen=True)
class BackendView:
    view: View
    selection: Selection
    variants: ProjectVariants  # the upstreams' own variant metadata
    version: str  # changes whenever any input changes (for rendered-page caches)
    stale: bool


@dataclass(frozen=True)
class BackendInputs:
    """What the page of a backend project is made from, and its version."""

    project: NormalizedName
    merged: MergedProject | None
    variants: ProjectVariants
    selection: Selection
    version: str  # changes whenever any input changes (for rendered-page caches)
    stale: bool


async def backend_inputs(
    backends: BackendIndexes,
    pages: ProjectPages,
    metadata: VariantMetadata,
    project: NormalizedName,
    fingerprint: Fingerprint,
) -> BackendInputs:
    """The upstreams' page and variants and the backend choice for this client.

    Raises ProjectNotFound when neither the upstreams nor any backend has the project.
    """
    merged: MergedProject | None
    try:
        merged = await pages.get(project)
    except ProjectNotFound:
        merged = None
    variants = await metadata.for_project(merged) if merged is not None else EMPTY_VARIANTS
    selection = await backends.select(project, fingerprint.properties)
    if merged is None and not selection.chosen:
        raise ProjectNotFound(project)
    version = "/".join(
        (merged.version if merged is not None else "-", variants.digest, selection.version)
    )
    stale = selection.stale or (merged is not None and merged.stale)
    return BackendInputs(project, merged, variants, selection, version, stale)


def build_backend_view(inputs: BackendInputs, fingerprint: Fingerprint) -> View:
    """The legacy view: the upstreams' files plus the chosen builds as variants."""
    merged = inputs.merged
    upstream_page = merged.page if merged is not None else ProjectPage(inputs.project, ())
    synthesised = synthesize(upstream_page, inputs.selection.chosen)
    view = legacy_view(
        synthesised.page,
        {**inputs.variants.by_version, **synthesised.variants},
        fingerprint.properties,
    )
    return restore_names(view, synthesised)


async def backend_view(
    backends: BackendIndexes,
    pages: ProjectPages,
    metadata: VariantMetadata,
    project: NormalizedName,
    fingerprint: Fingerprint,
) -> BackendView:
    """The page a legacy client with `fingerprint` is shown for a project backends serve."""
    inputs = await backend_inputs(backends, pages, metadata, project, fingerprint)
    view = build_backend_view(inputs, fingerprint)
    return BackendView(view, inputs.selection, inputs.variants, inputs.version, inputs.stale)
