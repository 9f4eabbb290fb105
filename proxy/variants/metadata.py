"""PEP 825 variant metadata: the variants.json model, its checks, merging, compatibility and
the PEP 825 ordering of variants for a client's supported properties. Pure: no I/O.

One model reads both the index-level `{name}-{version}-variants.json` and a wheel's
`*.dist-info/variant.json`, in every schema version seen in the wild:

- `v0.0.x` drafts (PEP 817 era): `default-priorities.namespace/.feature/.property`,
  `providers` (ignored, except the variantlib 0.2 form `providers.{ns}.static-properties` and
  `.feature-order`) and `static-properties` (properties every system supports);
- PEP 825 `v0.1.x`: only `default-priorities.namespace`; extra keys are ignored, so a file
  that still carries `.feature` / `.property` has them honoured.

The version is read from the `$schema` URL; an unknown major version is refused.
"""

from __future__ import annotations

# The parsing, merging and ordering live in their own modules; importing them from here keeps
# one name for "the variants.json model and everything done with it".
from proxy.variants.merging import (
    merge_variants_docs,
    render_variants_json,
    subset_variants_json,
)
from proxy.variants.model import (
    FeatureKey,
    UnknownLabelError,
    VariantDesc,
    VariantsConflictError,
    VariantsDoc,
    VariantsJsonError,
    variant_properties,
)
from proxy.variants.ordering import (
    PreferenceOrder,
    RankedProperty,
    Ranking,
    VariantSortKey,
    best_variant,
    incompatibility,
    preference_order,
    rank_variants,
)
from proxy.variants.parsing import parse_variants_json

__all__ = [
    "FeatureKey",
    "PreferenceOrder",
    "RankedProperty",
    "Ranking",
    "UnknownLabelError",
    "VariantDesc",
    "VariantSortKey",
    "VariantsConflictError",
    "VariantsDoc",
    "VariantsJsonError",
    "best_variant",
    "incompatibility",
    "merge_variants_docs",
    "parse_variants_json",
    "preference_order",
    "rank_variants",
    "render_variants_json",
    "subset_variants_json",
    "variant_properties",
]
