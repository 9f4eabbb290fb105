"""Backend indexes as synthesised variants: the built-in table, PEP 825 order over backends,
release sets from build pins, the choice per release, the synthesised page through the
ordinary legacy view, and the `[[backends]]` config."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli.explain_backends import detect_backend_line
from proxy.config import ConfigError, Settings, settings_from_mapping
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import normalize_name
from proxy.variants.backend_variants import (
    Backend,
    Catalogue,
    Release,
    choose_backend,
    make_catalogue,
    rank_backends,
    release_set,
    restore_names,
    synthesize,
)
from proxy.variants.fingerprint import expand_hardware_spec, parse_hardware_spec
from proxy.variants.properties import VariantProperty
from proxy.variants.pytorch_builds import builtin_backend_properties, builtin_properties
from proxy.variants.rewrite import legacy_view


def _backend(name: str, *projects: str) -> Backend:
    properties = builtin_backend_properties(name)
    assert properties is not None
    return Backend(name, properties, frozenset(normalize_name(p) for p in projects))


def _hw(spec: str) -> tuple[VariantProperty, ...]:
    return expand_hardware_spec(parse_hardware_spec(spec)).properties


BUILDS = [_backend(name, "torch") for name in ("cpu", "cu126", "cu128", "cu130", "rocm6.4")]


def test_the_builtin_table_names_cuda_bounds_architectures_rocm_and_xpu() -> None:
    cu128 = builtin_properties("cu128") or ()
    assert "nvidia :: cuda_version_lower_bound :: 12.8" in cu128
    assert "nvidia :: sm_arch :: 86_real" in cu128
    assert "nvidia :: sm_arch :: 61_real" not in cu128
    assert "nvidia :: sm_arch :: 120_virtual" in (builtin_properties("cu130") or ())
    assert builtin_properties("cpu") == ()
    rocm = builtin_properties("rocm6.4") or ()
    assert "amd :: rocm_version :: 6.4" in rocm and "amd :: gfx_arch :: gfx942" in rocm
    assert all(p.startswith("intel :: device_ip :: ") for p in builtin_properties("xpu") or ())
    assert builtin_properties("cu999") is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("cuda=12.8,sm=8.6", ("cu128", "cu126", "cpu")),
        ("cuda=13.0,sm=9.0", ("cu130", "cu128", "cu126", "cpu")),
        ("cuda=12.8,sm=6.1", ("cu126", "cpu")),  # cu128 ships no sm_6x code
        ("cuda=12.6,sm=12.0", ("cpu",)),  # cu126 has no sm_120, cu128 needs a newer driver
        ("cpu=x86_64_v3", ("cpu",)),
        ("none", ("cpu",)),
    ],
)
def test_backends_rank_in_pep_825_order_for_a_hardware_spec(
    spec: str, expected: tuple[str, ...]
) -> None:
    ranking = rank_backends(BUILDS, _hw(spec))
    assert ranking.ordered == expected
    assert "rocm6.4" in ranking.incompatible


def test_exact_ties_keep_the_order_of_the_config() -> None:
    same = builtin_backend_properties("cu128") or ()
    backends = [Backend("zeta", same), Backend("alpha", same)]
    assert rank_backends(backends, _hw("cuda=12.8,sm=9.0")).ordered == ("zeta", "alpha")


def _catalogues() -> dict[str, Catalogue]:
    torch27, vision22, audio27 = (
        Release("torch", "2.7.0"),
        Release("torchvision", "0.22.0"),
        Release("torchaudio", "2.7.0"),
    )
    triton = Release("triton", "3.3.0")
    projects = ("torch", "torchvision", "torchaudio", "triton")

    def catalogue(name: str, has_vision: bool) -> Catalogue:
        releases = {torch27: True, audio27: True, triton: False}
        requires: dict[Release, list[str]] = {
            torch27: ["triton==3.3.0; platform_system == 'Linux'"],
            audio27: [f"torch==2.7.0+{name}"],
        }
        if has_vision:
            releases[vision22] = True
            requires[vision22] = [f"torch==2.7.0+{name}", "pillow; extra == 'img'"]
        return make_catalogue(name, releases, requires, projects)

    return {"cu130": catalogue("cu130", False), "cu128": catalogue("cu128", True)}


def test_a_release_set_is_tied_by_build_pins_not_by_pins_of_shared_releases() -> None:
    catalogues = _catalogues()
    members = release_set(Release("torch", "2.7.0"), catalogues.values())
    assert members == {
        Release("torch", "2.7.0"),
        Release("torchvision", "0.22.0"),
        Release("torchaudio", "2.7.0"),
    }  # triton 3.3.0 is one release for every build: it ties nothing


def test_the_best_build_with_the_whole_release_set_is_chosen() -> None:
    catalogues = _catalogues()
    ranking = rank_backends([_backend("cu130"), _backend("cu128")], _hw("cuda=13.0,sm=9.0"))
    choice = choose_backend(Release("torchaudio", "2.7.0"), ranking, catalogues)
    assert choice.backend == "cu128"
    assert choice.passed_over["cu130"] == "lacks torchvision 0.22.0 of the release set"


def test_without_any_whole_set_the_best_build_that_has_the_release_is_chosen() -> None:
    catalogues = _catalogues()
    ranking = rank_backends([_backend("cu130")], _hw("cuda=13.0,sm=9.0"))
    choice = choose_backend(Release("torch", "2.7.0"), ranking, catalogues)
    assert choice.backend == "cu130"
    assert "no compatible build has the whole release set" in choice.reason


def _dist(filename: str, host: str) -> DistFile:
    return DistFile(filename, f"http://{host}/files/{filename}", {"sha256": "0" * 64})


def test_the_chosen_build_replaces_the_upstream_wheel_it_covers_and_keeps_its_name() -> None:
    upstream = ProjectPage(
        "torch",
        (
            _dist("torch-2.7.0-cp312-cp312-manylinux_2_28_x86_64.whl", "up"),
            _dist("torch-2.7.0-cp312-cp312-macosx_11_0_arm64.whl", "up"),
            _dist("torch-2.6.0-cp312-cp312-manylinux_2_28_x86_64.whl", "up"),
        ),
        versions=("2.6.0", "2.7.0"),
    )
    build = _dist("torch-2.7.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl", "cu128")
    synthesised = synthesize(upstream, {Release("torch", "2.7.0"): (_backend("cu128"), [build])})
    view = legacy_view(
        synthesised.page, synthesised.variants, _hw("cpu=x86_64_v3,cuda=12.8,sm=9.0")
    )
    shown = restore_names(view, synthesised)
    assert [d.filename for d in shown.page.files] == [
        "torch-2.7.0-cp312-cp312-macosx_11_0_arm64.whl",
        "torch-2.6.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "torch-2.7.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl",
    ]
    assert shown.page.files[-1].url == build.url
    assert "torch-2.7.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl" in {
        item.filename for decision in shown.decisions for item in decision.files
    }


def test_the_cpu_build_is_the_null_variant_for_a_known_fingerprint() -> None:
    upstream = ProjectPage("torch", (_dist("torch-2.7.0-py3-none-any.whl", "up"),))
    cpu = _dist("torch-2.7.0+cpu-py3-none-any.whl", "cpu")
    synthesised = synthesize(upstream, {Release("torch", "2.7.0"): (_backend("cpu"), [cpu])})
    view = legacy_view(synthesised.page, synthesised.variants, ())
    assert [d.filename for d in restore_names(view, synthesised).page.files] == [cpu.filename]


# --- [[backends]] in the config -----------------------------------------------------------


def _settings(backends: list[dict[str, object]], upstream_urls: tuple[str, ...] = ()) -> Settings:
    data = {"upstreams": [{"url": "http://127.0.0.1:1/simple/"}], "backends": backends}
    return settings_from_mapping(data, cache_dir=Path("unused"), upstream_urls=upstream_urls)


def test_backends_take_builtin_properties_and_the_pytorch_family_by_default() -> None:
    settings = _settings([{"name": "cu128", "url": "http://127.0.0.1:2/whl/cu128/"}])
    (backend,) = settings.backends
    assert backend.properties == builtin_properties("cu128")
    assert "torchvision" in backend.projects and "fbgemm-gpu" in backend.projects
    assert backend.index.url == "http://127.0.0.1:2/whl/cu128/"


def test_backends_survive_upstream_urls_from_the_command_line() -> None:
    settings = _settings(
        [{"name": "cpu", "url": "http://127.0.0.1:2/whl/cpu/", "properties": []}],
        upstream_urls=("http://127.0.0.1:3/simple/",),
    )
    assert [b.name for b in settings.backends] == ["cpu"]
    assert settings.upstreams[0].url == "http://127.0.0.1:3/simple/"


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        ([{"name": "mybuild", "url": "http://h/"}], "backends[0].properties: missing"),
        ([{"name": "Cu128", "url": "http://h/"}], "backends[0].name"),
        (
            [{"name": "x", "url": "http://h/", "properties": ["nvidia :: sm"]}],
            "backends[0].properties[0]",
        ),
        (
            [
                {"name": "a", "url": "http://h/", "properties": []},
                {"name": "b", "url": "http://h/", "properties": []},
            ],
            "only one backend can be the null variant",
        ),
        ([{"name": "cpu", "url": "http://h/", "colour": 1}], "backends[0].colour"),
    ],
)
def test_bad_backends_are_config_errors_naming_the_key(
    backends: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _settings(backends)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("cuda=12.8,sm=8.6", "cu128"), ("cuda=13.0,sm=9.0", "cu130"), ("none", "cpu")],
)
def test_detect_names_the_pytorch_build_of_the_builtin_table(spec: str, expected: str) -> None:
    fingerprint = expand_hardware_spec(parse_hardware_spec(spec))
    line = detect_backend_line(fingerprint, ())
    assert line == f"Backend (PyTorch build, built-in table): {expected}\n"


def test_detect_names_the_configured_backend_when_there_are_backends() -> None:
    settings = _settings(
        [
            {"name": "cpu", "url": "http://127.0.0.1:2/cpu/"},
            {"name": "cu126", "url": "http://127.0.0.1:2/cu126/"},
        ]
    )
    fingerprint = expand_hardware_spec(parse_hardware_spec("cuda=13.0,sm=9.0"))
    assert detect_backend_line(fingerprint, settings.backends).endswith(": cu126\n")
