"""Differential test of the legacy view (CONTRACT.md "What a legacy client is shown").

Seeded random multi-platform projects (python tags, manylinux levels, musl, macOS versions,
Windows, yanked variants, static properties, draft-schema priorities) and fingerprints. For
each, in many simulated environments (tag lists built with `packaging.tags` as `sys_tags()`
builds them on those machines, with pip 26's `linux_ARCH`-first order and the older one):

- a PEP 825 installer, written here from the PEP text, picks from the *upstream* page: filter
  wheels by the environment's tags and requires-python, skip yanked files, take the most
  preferred compatible variant label (null after every other one, non-variant wheels only
  when no variant fits), then the best tag, then the highest build tag;
- pip, emulated here, picks from the *legacy page* the proxy serves: best tag only, then
  build tag, of equal ones the last listed (pip's resolver walks its stable-sorted candidates
  in reverse), yanked files skipped.

Every disagreement must be a rule-5 case: pip took a listed wheel of a worse rank than the PEP
installer's pick because it holds a tag pip prefers in that environment (pip ranks
interpreter and abi above platform, and pip 26 puts `linux_ARCH` first) and no better-ranked
wheel covers it. Those are counted and classified; every other case must agree.

The variant ordering written here is cross-checked with variantlib (the WheelNext reference)
on documents where the two readings agree. Where they differ, the PEP text is followed:
`default-priorities.property` values a client lacks still decide a variant's best value (PEP
825 steps 3-4); variantlib 0.2 skips them.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import parse_wheel_filename as packaging_wheel_name
from packaging.version import Version
from variantlib.models.variant import VariantDescription
from variantlib.models.variant import VariantProperty as OracleProperty
from variantlib.resolver.lib import sort_and_filter_supported_variants

from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.metadata import parse_variants_json
from proxy.variants.properties import VariantProperty
from proxy.variants.rewrite import VersionVariants, legacy_view

SCHEMA_DRAFT = "https://variants-schema.wheelnext.dev/v0.0.3.json"
CASES = 120
SEED = 825

# --- environments ----------------------------------------------------------------------------


def _glibc(level: int, arch: str, linux_first: bool) -> list[str]:
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    many: list[str] = []
    for minor in range(level, (5 if arch == "x86_64" else 17) - 1, -1):
        many.append(f"manylinux_2_{minor}_{arch}")
        if minor in aliases:
            many.append(f"{aliases[minor]}_{arch}")
    return [f"linux_{arch}", *many] if linux_first else [*many, f"linux_{arch}"]


def _musl(level: int, arch: str, linux_first: bool) -> list[str]:
    musl = [f"musllinux_1_{minor}_{arch}" for minor in range(level, -1, -1)]
    return [f"linux_{arch}", *musl] if linux_first else [*musl, f"linux_{arch}"]


@dataclass(frozen=True)
class Env:
    name: str
    tags: tuple[Tag, ...]
    python: Version

    def priority(self, wheel_tags: frozenset[Tag]) -> int | None:
        found = [i for i, tag in enumerate(self.tags) if tag in wheel_tags]
        return min(found) if found else None


def _environments() -> list[Env]:
    machines: dict[str, list[str]] = {}
    for linux_first, pip in ((True, "pip 26"), (False, "pip <26")):
        for level in (17, 28, 35):
            machines[f"glibc 2.{level} x86_64 ({pip})"] = _glibc(level, "x86_64", linux_first)
        machines[f"glibc 2.28 aarch64 ({pip})"] = _glibc(28, "aarch64", linux_first)
        machines[f"musl 1.2 x86_64 ({pip})"] = _musl(2, "x86_64", linux_first)
    for version, arch in (((11, 0), "arm64"), ((14, 0), "arm64"), ((10, 15), "x86_64")):
        machines[f"macOS {version[0]}.{version[1]} {arch}"] = list(mac_platforms(version, arch))
    machines["macOS 14 x86_64"] = list(mac_platforms((14, 0), "x86_64"))
    machines["windows amd64"] = ["win_amd64"]
    envs = []
    for name, platforms in machines.items():
        for minor, threaded in ((9, False), (11, False), (12, False), (13, False), (13, True)):
            abi = f"cp3{minor}{'t' if threaded else ''}"
            tags = [*cpython_tags((3, minor), [abi], platforms)]
            tags += compatible_tags((3, minor), f"cp3{minor}", platforms)
            envs.append(Env(f"{name}, CPython {abi}", tuple(tags), Version(f"3.{minor}.0")))
    return envs


ENVIRONMENTS = _environments()

# --- random projects -------------------------------------------------------------------------

PYTHONS = [("cp311", "cp311"), ("cp312", "cp312"), ("cp313", "cp313t"), ("cp39", "abi3")]
PLATFORMS = [
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_28_aarch64",
    "musllinux_1_2_x86_64",
    "linux_x86_64",
    "macosx_11_0_arm64",
    "macosx_14_0_arm64",
    "macosx_10_9_universal2",
    "macosx_10_9_x86_64",
    "win_amd64",
]
LABELS = {
    "x86_64_v3": {"x86_64": {"level": ["v3"]}},
    "x86_64_v2": {"x86_64": {"level": ["v2"]}},
    "v4v2": {"x86_64": {"level": ["v4", "v2"]}},
    "avx512": {"x86_64": {"avx512f": ["on"]}},
    "cu128": {"nvidia": {"sm_arch": ["90_real"]}},
    "cu126": {"nvidia": {"sm_arch": ["80_real", "90_real"]}},
    "mkl": {"blas": {"library": ["mkl"]}},
    "openblas": {"blas": {"library": ["openblas"]}},
}
CLIENT = [
    "x86_64 :: level :: v3",
    "x86_64 :: level :: v2",
    "x86_64 :: avx512f :: on",
    "nvidia :: sm_arch :: 90_real",
    "nvidia :: sm_arch :: 80_real",
    "blas :: library :: mkl",
]


def _dist(filename: str, **attributes: Any) -> DistFile:
    digest = hashlib.sha256(filename.encode()).hexdigest()
    return DistFile(filename, f"https://files.index.example/{digest[:12]}/{filename}", **attributes)


def _wheel(rng: random.Random, label: str | None) -> DistFile:
    if rng.random() < 0.12:
        python, abi, platform = "py3", "none", "any"
    else:
        (python, abi), platform = rng.choice(PYTHONS), rng.choice(PLATFORMS)
    build = "-1" if rng.random() < 0.05 else ""
    suffix = f"-{label}" if label else ""
    name = f"pkg-1.0{build}-{python}-{abi}-{platform}{suffix}.whl"
    requires = rng.choice([None, None, None, ">=3.10", ">=3.12"])
    yanked = label is not None and rng.random() < 0.15
    return _dist(name, requires_python=requires, yanked="broken" if yanked else False)


def _document(rng: random.Random, labels: list[str]) -> dict[str, Any]:
    variants: dict[str, Any] = {label: LABELS[label] for label in labels}
    namespaces = ["nvidia", "x86_64", "blas"]
    rng.shuffle(namespaces)
    priorities: dict[str, Any] = {"namespace": namespaces}
    if rng.random() < 0.4:
        priorities["feature"] = {"x86_64": rng.sample(["level", "avx512f"], 2)}
    if rng.random() < 0.4:
        priorities["property"] = {"x86_64": {"level": rng.sample(["v4", "v3", "v2"], 2)}}
    document: dict[str, Any] = {"$schema": SCHEMA_DRAFT, "default-priorities": priorities}
    if rng.random() < 0.3:  # ahead-of-time: openblas only, whatever the client says
        document["static-properties"] = {"blas": {"library": ["openblas"]}}
    document["variants"] = variants
    return document


@dataclass
class Case:
    page: ProjectPage
    document: dict[str, Any]
    fingerprint: tuple[VariantProperty, ...]


def _case(rng: random.Random) -> Case:
    files = [_dist("pkg-1.0.tar.gz")] if rng.random() < 0.5 else []
    files += [_wheel(rng, None) for _ in range(rng.randint(0, 6))]
    labels = rng.sample(sorted(LABELS), rng.randint(1, 4))
    if rng.random() < 0.5:
        labels.append("null")
    files += [_wheel(rng, label) for label in labels for _ in range(rng.randint(1, 3))]
    unique = {f.filename: f for f in files}
    document = _document(rng, [label for label in labels if label != "null"])
    if "null" in labels:
        document["variants"]["null"] = {}
    client = rng.sample(CLIENT, rng.randint(0, len(CLIENT)))
    client.sort(key=CLIENT.index)
    fingerprint = tuple(VariantProperty.parse(item) for item in client)
    files = list(unique.values())
    rng.shuffle(files)
    return Case(ProjectPage("pkg", tuple(files)), document, fingerprint)


# --- a PEP 825 installer, from the PEP text --------------------------------------------------


def _supported(document: dict[str, Any], fingerprint: Sequence[VariantProperty]) -> list[Any]:
    static = [
        (ns, feature, value)
        for ns, features in document.get("static-properties", {}).items()
        for feature, values in features.items()
        for value in values
    ]
    static_namespaces = {ns for ns, _, _ in static}
    client = [(p.namespace, p.feature, p.value) for p in fingerprint]
    return static + [prop for prop in client if prop[0] not in static_namespaces]


def pep825_order(document: dict[str, Any], fingerprint: Sequence[VariantProperty]) -> list[str]:
    """The compatible labels, best first, null last (PEP 825 "Variant ordering")."""
    supported = _supported(document, fingerprint)
    priorities = document["default-priorities"]
    namespace_order: list[str] = priorities["namespace"]
    feature_order: dict[str, list[str]] = {}
    value_order: dict[tuple[str, str], list[str]] = {}
    for ns in namespace_order:
        feature_order[ns] = list(priorities.get("feature", {}).get(ns, []))
        for p_ns, feature, _ in supported:
            if p_ns == ns and feature not in feature_order[ns]:
                feature_order[ns].append(feature)
        for feature in feature_order[ns]:
            order = list(priorities.get("property", {}).get(ns, {}).get(feature, []))
            for p_ns, p_feature, value in supported:
                if (p_ns, p_feature) == (ns, feature) and value not in order:
                    order.append(value)
            value_order[(ns, feature)] = order
    supported_set = set(supported)

    def key(label: str) -> list[tuple[int, int, int]] | None:
        best = []
        for ns, features in document["variants"][label].items():
            for feature, values in features.items():
                if not any((ns, feature, v) in supported_set for v in values):
                    return None
                order = value_order[(ns, feature)]
                value = min((v for v in values if v in order), key=order.index)
                best.append(
                    (
                        namespace_order.index(ns),
                        feature_order[ns].index(feature),
                        order.index(value),
                    )
                )
        return sorted(best)

    keyed = [(key(label), label) for label in document["variants"] if label != "null"]
    compatible = [(k, label) for k, label in keyed if k is not None]

    def sort_key(item: tuple[list[tuple[int, int, int]], str]) -> tuple[Any, ...]:
        # more keys win a common-prefix tie: pad with a key larger than any
        return (*item[0], (10**9,), item[1])

    ordered = [label for _, label in sorted(compatible, key=lambda i: sort_key(i))]
    return ordered + (["null"] if "null" in document["variants"] else [])


def _split(filename: str) -> tuple[str, str | None]:
    """(the name without its variant label, the label or None)."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) == 7 or (len(parts) == 6 and not parts[2][0].isdigit()):
        return "-".join(parts[:-1]) + ".whl", parts[-1]
    return filename, None


def _tags(filename: str) -> frozenset[Tag]:
    return packaging_wheel_name(_split(filename)[0])[3]


def _label(filename: str) -> str | None:
    return _split(filename)[1]


def _installable(env: Env, dist: DistFile) -> int | None:
    if dist.yanked is not False:
        return None
    if dist.requires_python and env.python not in SpecifierSet(dist.requires_python):
        return None
    return env.priority(_tags(dist.filename))


def pep825_pick(env: Env, page: ProjectPage, order: list[str]) -> DistFile | None:
    rank = {label: i for i, label in enumerate(order)}
    best: tuple[tuple[int, int, int], DistFile] | None = None
    for dist in page.files:
        if not dist.filename.endswith(".whl"):
            continue
        label = _label(dist.filename)
        if label is not None and label not in rank:
            continue
        priority = _installable(env, dist)
        if priority is None:
            continue
        build = 1 if "-1-" in dist.filename else 0
        key = (rank.get(label, len(order)) if label else len(order), priority, -build)
        if best is None or key < best[0]:
            best = (key, dist)
    return best[1] if best else None


def pip_pick(env: Env, page: ProjectPage) -> DistFile | None:
    best: tuple[tuple[int, int], DistFile] | None = None
    for dist in page.files:
        if not dist.filename.endswith(".whl"):
            continue
        priority = _installable(env, dist)
        if priority is None:
            continue
        key = (-priority, 1 if "-1-" in dist.filename else 0)
        if best is None or key >= best[0]:
            best = (key, dist)
    return best[1] if best else None


# --- the comparison --------------------------------------------------------------------------


def _rule5_reason(
    env: Env, got: DistFile | None, wanted: DistFile, view: ProjectPage
) -> str | None:
    """Why no page can make pip agree here, or None when a page could have."""
    wanted_name = _split(wanted.filename)[0]
    if wanted.url not in {d.url for d in view.files} and wanted_name in {
        d.filename for d in view.files
    }:
        # Rule 4: one name, one file. A better-ranked wheel of the same tags holds the name
        # but needs a newer Python here (it does not cover this one: requires-python narrows).
        return "a better-ranked wheel holds its name but needs another Python"
    if got is None:
        return None
    got_priority = env.priority(_tags(got.filename))
    wanted_priority = env.priority(_tags(wanted.filename))
    assert got_priority is not None and wanted_priority is not None
    if got_priority == wanted_priority and "-1-" in got.filename and "-1-" not in wanted.filename:
        # pip ranks a higher build tag above everything but the tag; this worse-ranked wheel
        # is not covered (requires-python narrows), so the better one cannot hide it
        return "pip prefers the higher build tag of a wheel with the same tag"
    if got_priority >= wanted_priority:
        return None
    best = env.tags[got_priority]
    if best.platform.startswith("linux_"):
        return "pip 26 ranks linux_ARCH first"
    return "pip ranks interpreter and abi above platform"


def test_pip_from_the_legacy_page_picks_what_a_pep825_installer_picks_from_upstream() -> None:
    rng = random.Random(SEED)
    compared = agreed = 0
    rule5: Counter[str] = Counter()
    for _ in range(CASES):
        case = _case(rng)
        doc = parse_variants_json(case.document)
        view = legacy_view(case.page, {"1.0": VersionVariants(doc)}, case.fingerprint)
        order = pep825_order(case.document, case.fingerprint)
        upstream_by_url = {dist.url: dist for dist in case.page.files}
        for env in ENVIRONMENTS:
            wanted = pep825_pick(env, case.page, order)
            got = pip_pick(env, view.page)
            got_upstream = upstream_by_url[got.url] if got is not None else None
            compared += 1
            if got_upstream == wanted:
                agreed += 1
                continue
            assert wanted is not None, f"{env.name}: pip gets {got_upstream}, PEP 825 none"
            reason = _rule5_reason(env, got_upstream, wanted, view.page)
            assert reason is not None, (
                f"{env.name}: pip takes {got_upstream}, a PEP 825 installer "
                f"{wanted.filename}; page {[d.filename for d in view.page.files]}\n{case}"
            )
            rule5[reason] += 1
    print(f"\n{compared} picks compared, {agreed} agree, rule 5: {dict(rule5)}")
    assert compared == CASES * len(ENVIRONMENTS)
    assert agreed + sum(rule5.values()) == compared
    # most cases agree: rule 5 is the exception, not the rule
    assert sum(rule5.values()) < compared // 20


def test_the_ordering_written_here_matches_variantlib_where_they_agree() -> None:
    rng = random.Random(SEED + 1)
    checked = 0
    for _ in range(200):
        labels = rng.sample(sorted(LABELS), rng.randint(2, 6))
        document = _document(rng, labels)
        document.pop("static-properties", None)  # variantlib takes these from plugins
        client = rng.sample(CLIENT, rng.randint(0, len(CLIENT)))
        fingerprint = tuple(VariantProperty.parse(item) for item in client)
        supported = {(p.namespace, p.feature, p.value) for p in fingerprint}
        levels = document["default-priorities"].get("property", {}).get("x86_64", {})
        if any(("x86_64", "level", v) not in supported for v in levels.get("level", [])):
            continue  # the PEP text and variantlib differ here (see the module docstring)
        grouped: dict[tuple[str, str], list[str]] = {}
        for p in fingerprint:
            grouped.setdefault(p.feature_key, []).append(p.value)
        oracle = sort_and_filter_supported_variants(
            [VariantDescription.from_dict(document["variants"][label], label) for label in labels],
            [
                OracleProperty(namespace=ns, feature=f, value=v)
                for (ns, f), vs in grouped.items()
                for v in vs
            ],
            namespace_priorities=list(document["default-priorities"]["namespace"]),
            feature_priorities=document["default-priorities"].get("feature", {}),
            property_priorities=document["default-priorities"].get("property", {}),
        )
        expected = [vdesc.label for vdesc in oracle if vdesc.label != "null"]
        assert pep825_order(document, fingerprint) == expected
        checked += 1
    assert checked > 50
