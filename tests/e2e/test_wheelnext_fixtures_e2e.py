"""WheelNext-style variant wheels as an upstream (the suite's own equivalents, plus the real
WheelNext files of ../shared/fixtures/wheelnext, read in place, when beside the clone):
for each fingerprint the proxy shows a legacy client exactly variantlib's first choice, under
its legacy name and with that file's hash, and the native view lists exactly the variants
variantlib calls compatible. The same holds when the variants.json files are withheld and the
proxy builds them from the wheels' own variant.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .builders import normalize
from .clients import http_get, installed_versions, pip_install
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config
from .upstream_server import UpstreamServer
from .variant_support import ListedFile, page_files, sha256, variantlib_order
from .wheelnext_like import REFERENCE_MISSING, REFERENCE_ROOT, fixture_roots

pytestmark = pytest.mark.e2e

PROJECT_FOLDERS = sorted(
    folder
    for root in fixture_roots()
    for folder in root.rglob("*")
    if folder.is_dir() and any(folder.glob("*.whl"))
)


@dataclass(frozen=True)
class FixtureProject:
    """One fixture folder: its wheels by label (None = the non-variant wheel), its file."""

    name: str
    folder: Path
    wheels: dict[str | None, Path]
    variants_json: Path

    @property
    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.variants_json.read_bytes())
        return loaded


def _label(path: Path) -> str | None:
    parts = path.name.removesuffix(".whl").split("-")
    return parts[5] if len(parts) == 6 else None


def _load(folder: Path) -> FixtureProject:
    wheels = {_label(path): path for path in sorted(folder.glob("*.whl"))}
    (variants_json,) = folder.glob("*-variants.json")
    name = normalize(next(iter(wheels.values())).name.split("-")[0])
    return FixtureProject(name, folder, wheels, variants_json)


PROJECTS = [_load(folder) for folder in PROJECT_FOLDERS]


HARDWARE = (
    "fictional_hw :: architecture :: deepthought",
    "fictional_hw :: architecture :: tars",
    "fictional_hw :: architecture :: hal9000",
    "fictional_hw :: architecture :: mother",
    "fictional_hw :: compute_capability :: 10",
    "fictional_hw :: compute_capability :: 8",
    "fictional_hw :: compute_capability :: 6",
    "fictional_hw :: compute_capability :: 4",
    "fictional_hw :: compute_accuracy :: 10",
    "fictional_hw :: compute_accuracy :: 8",
    "fictional_hw :: compute_accuracy :: 0",
    "fictional_hw :: humor :: 10",
    "fictional_hw :: humor :: 2",
    "fictional_hw :: humor :: 0",
)
TECHNOLOGY = (
    "fictional_tech :: quantum :: superposition",
    "fictional_tech :: quantum :: foam",
    "fictional_tech :: technology :: auto_chef",
    "fictional_tech :: technology :: improb_drive",
    "fictional_tech :: risk_exposure :: 25",
    "fictional_tech :: risk_exposure :: 1000000000",
)
PLUGIN = (
    "installable_plugin :: feat1 :: val1c",
    "installable_plugin :: feat2 :: val2b",
)
# name -> the supported properties, most preferred first.
FINGERPRINTS: dict[str, Sequence[str]] = {
    "everything": [*HARDWARE, *TECHNOLOGY, *PLUGIN],
    "everything-reversed": [*HARDWARE, *TECHNOLOGY, *PLUGIN][::-1],
    "technology-first": [*TECHNOLOGY, *PLUGIN[::-1], *HARDWARE],
    "mother-machine": (
        "fictional_hw :: architecture :: mother",
        "fictional_hw :: compute_capability :: 4",
        "fictional_hw :: compute_accuracy :: 10",
        "installable_plugin :: feat2 :: val2b",
    ),
    "hal9000-with-foam": (
        "fictional_hw :: architecture :: hal9000",
        "fictional_hw :: compute_accuracy :: 0",
        "fictional_hw :: compute_capability :: 6",
        "fictional_hw :: humor :: 2",
        "fictional_tech :: quantum :: foam",
        "fictional_tech :: technology :: improb_drive",
        "fictional_tech :: risk_exposure :: 1000000000",
        "installable_plugin :: feat1 :: val1c",
    ),
    "unrelated": ("x86_64 :: level :: v3",),
    "empty": [],
}


def oracle_best(document: dict[str, Any], supported: Sequence[str]) -> str | None:
    """variantlib's first choice (None: nothing fits and the file has no null variant)."""
    ordered = variantlib_order(document, supported)
    return ordered[0] if ordered else None


def _publish(upstream: UpstreamServer, *, with_variants_json: bool) -> UpstreamServer:
    for project in PROJECTS:
        for path in project.wheels.values():
            upstream.add_file(project.name, path.name, path.read_bytes())
        if with_variants_json:
            path = project.variants_json
            upstream.add_file(project.name, path.name, path.read_bytes())
    return upstream


@pytest.fixture(scope="module")
def served(module_proxy: ProxyLauncher) -> Iterator[RunningProxy]:
    upstream = _publish(UpstreamServer("html").start(), with_variants_json=True)
    running = module_proxy.start(proxy_config(module_proxy.new_cache_dir(), [upstream]))
    yield running
    running.stop()
    upstream.close()


@pytest.fixture(scope="module")
def served_building(module_proxy: ProxyLauncher) -> Iterator[RunningProxy]:
    """A proxy whose upstream lists no variants.json: it builds them from the wheels."""
    upstream = _publish(UpstreamServer("json").start(), with_variants_json=False)
    config = proxy_config(
        module_proxy.new_cache_dir(),
        [upstream],
        variants={"build_missing_variants_json": True},
    )
    running = module_proxy.start(config)
    yield running
    running.stop()
    upstream.close()


@pytest.mark.skipif(not REFERENCE_ROOT.is_dir(), reason=REFERENCE_MISSING)
def test_the_reference_projects_are_there() -> None:
    assert {project.name for project in PROJECTS} >= {
        "dummy-project-flit",
        "dummy-project-hatch",
        "sandbox-project-flit",
        "test-package",
    }
    for project in PROJECTS:
        assert None in project.wheels, project.folder


def test_the_generated_projects_are_there() -> None:
    names = {project.name for project in PROJECTS}
    assert names >= {"gen-flit", "gen-hatch", "gen-sandbox", "gen-plugin"}
    for project in PROJECTS:
        assert None in project.wheels, project.folder


def _header(supported: Sequence[str]) -> dict[str, str]:
    return {"Variant-Properties": ", ".join(supported)}


def _legacy_name(path: Path) -> str:
    parts = path.name.removesuffix(".whl").split("-")
    return "-".join(parts[:5]) + ".whl"


def _check_legacy_page(
    files: dict[str, ListedFile], project: FixtureProject, best: str | None
) -> None:
    plain = project.wheels[None]
    expected = project.wheels[best] if best is not None else plain
    # Only the legacy name is listed, once, standing for variantlib's choice.
    assert set(files) == {plain.name}, sorted(files)
    assert files[plain.name].sha256 == sha256(expected.read_bytes()), best
    assert _legacy_name(expected) == plain.name


@pytest.mark.parametrize("fingerprint", sorted(FINGERPRINTS))
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_legacy_page_shows_variantlibs_first_choice(
    served: RunningProxy, project: FixtureProject, fingerprint: str
) -> None:
    supported = FINGERPRINTS[fingerprint]
    best = oracle_best(project.document, supported)
    files = page_files(served.page_url(project.name), headers=_header(supported))
    _check_legacy_page(files, project, best)


@pytest.mark.parametrize("fingerprint", ["mother-machine", "hal9000-with-foam", "unrelated"])
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_hw_prop_url_gives_variantlibs_first_choice(
    served: RunningProxy, project: FixtureProject, fingerprint: str
) -> None:
    supported = FINGERPRINTS[fingerprint]
    spec = ",".join("prop=" + item.replace(" ", "") for item in supported)
    best = oracle_best(project.document, supported)
    files = page_files(f"{served.url}/hw/{spec}/simple/{project.name}/")
    _check_legacy_page(files, project, best)


@pytest.mark.parametrize("source", ["listed", "built-from-wheels"])
@pytest.mark.parametrize("fingerprint", ["everything", "mother-machine", "empty"])
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_native_view_lists_variantlibs_compatible_variants(
    request: pytest.FixtureRequest, project: FixtureProject, fingerprint: str, source: str
) -> None:
    # With no variants.json upstream, the proxy builds one from the wheels' own variant.json
    # files and lists it in the native view just as it lists an upstream one.
    served: RunningProxy = request.getfixturevalue(
        "served" if source == "listed" else "served_building"
    )
    supported = FINGERPRINTS[fingerprint]
    compatible = set(variantlib_order(project.document, supported))
    files = page_files(f"{served.url}/native/simple/{project.name}/", headers=_header(supported))
    listed_labels = {_label(Path(name)) for name in files if name.endswith(".whl")}
    assert listed_labels == compatible | {None}
    if compatible:
        listed = files[project.variants_json.name]
        body = http_get(listed.url).body
        assert sha256(body) == listed.sha256
        assert set(json.loads(body)["variants"]) == compatible
    else:
        assert project.variants_json.name not in files


@pytest.mark.parametrize("fingerprint", ["everything", "technology-first", "empty"])
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_variants_json_built_from_the_wheels_gives_the_same_choice(
    served_building: RunningProxy, project: FixtureProject, fingerprint: str
) -> None:
    supported = FINGERPRINTS[fingerprint]
    # The wheels describe only their own labels; every label the folder has a wheel for is
    # in its variants.json, so the choice among the wheels is the same.
    best = oracle_best(project.document, supported)
    files = page_files(served_building.page_url(project.name), headers=_header(supported))
    _check_legacy_page(files, project, best)


def _installed_variant_label(target: Path) -> str | None:
    (dist_info,) = target.glob("*.dist-info")
    variant_json = dist_info / "variant.json"
    if not variant_json.exists():
        return None
    (label,) = json.loads(variant_json.read_text())["variants"]
    return str(label)


def test_pip_installs_variantlibs_first_choice(served: RunningProxy, tmp_path: Path) -> None:
    project = next(p for p in PROJECTS if p.name == "gen-flit")
    supported = FINGERPRINTS["hal9000-with-foam"]
    best = oracle_best(project.document, supported)
    assert best is not None
    spec = ",".join("prop=" + item.replace(" ", "") for item in supported)
    pip_install(f"{served.url}/hw/{spec}/simple/", [project.name], tmp_path)
    assert installed_versions(tmp_path) == {project.name: "0.1.0"}
    assert _installed_variant_label(tmp_path) == best
