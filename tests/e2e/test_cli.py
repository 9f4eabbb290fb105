"""The `detect` and `explain` commands, run as a user runs them (`python -m proxy ...`).

`explain` reads the same local upstream of variant wheels the install tests use, and must
name, for each hardware spec, the same winner that pip installs through the server.
"""

from __future__ import annotations

import configparser
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .proxy_process import run_proxy_cli
from .upstream_server import UpstreamServer
from .variant_support import (
    NULL,
    PROJECT,
    SPEC_WINNERS,
    VariantWheelhouse,
    build_variant_wheelhouse,
    publish_variants,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> VariantWheelhouse:
    return build_variant_wheelhouse(tmp_path_factory.mktemp("cli-house"))


@pytest.fixture(scope="module")
def upstream(house: VariantWheelhouse) -> Iterator[UpstreamServer]:
    server = publish_variants(UpstreamServer("json").start(), house)
    yield server
    server.close()


def _explain(upstream: UpstreamServer, cache: Path, *args: str) -> str:
    result = run_proxy_cli(
        ["explain", PROJECT, "--upstream", upstream.index_url, "--cache-dir", str(cache), *args]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_detect_prints_properties_header_spec_and_a_ready_pip_line() -> None:
    result = run_proxy_cli(["detect", "--proxy", "http://proxy.example:8080"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("Variant-Properties:"))
    spec = next(line for line in lines if line.startswith("Hardware spec:")).split(": ", 1)[1]
    pip_line = next(line for line in lines if line.startswith("pip install"))
    assert f"--index-url http://proxy.example:8080/hw/{spec}/simple/" in pip_line
    # This CI machine has no NVIDIA driver: a note says so and no nvidia property appears.
    if "nvidia ::" not in header:
        assert any("nvidia" in line and line.startswith("#") for line in lines)


def test_detect_ready_url_is_short_on_this_machine() -> None:
    # This machine reports dozens of CPU flags; the default spec is the compact one.
    result = run_proxy_cli(["detect", "--proxy", "http://proxy.example:8080"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    spec = next(line for line in lines if line.startswith("Hardware spec:")).split(": ", 1)[1]
    assert "prop=" not in spec
    for tool in ("pip install", "uv pip install"):
        line = next(line for line in lines if line.startswith(tool))
        url = line.split("--index-url ", 1)[1].split()[0]
        assert len(url) < 200 and url.endswith(f"/hw/{spec}/simple/")
    full = run_proxy_cli(["detect", "--full", "--proxy", "http://proxy.example:8080"])
    full_spec = next(
        line for line in full.stdout.splitlines() if line.startswith("Hardware spec:")
    ).split(": ", 1)[1]
    assert full_spec.startswith(spec.split(",")[0])
    if any(line.startswith("# compact spec:") for line in lines):
        assert "prop=" in full_spec


@pytest.mark.parametrize("fmt", ["pip-conf", "uv-toml"])
def test_detect_config_snippets(fmt: str) -> None:
    result = run_proxy_cli(["detect", "--format", fmt, "--proxy", "http://proxy.example:8080"])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    if fmt == "pip-conf":
        parser = configparser.ConfigParser()
        parser.read_string(text)
        url = parser["global"]["index-url"]
    else:
        (index,) = tomllib.loads(text)["index"]
        url, default = index["url"], index["default"]
        assert default is True
    assert url.startswith("http://proxy.example:8080/hw/") and url.endswith("/simple/")
    assert len(url) < 200


@pytest.mark.parametrize("spec", ["cpu=x86_64_v3,cuda=12.8,sm=9.0", "cpu=x86_64_v2", "none"])
def test_explain_names_the_build_pip_gets(
    upstream: UpstreamServer, house: VariantWheelhouse, tmp_path: Path, spec: str
) -> None:
    output = _explain(upstream, tmp_path, "--hw", spec)
    winner = SPEC_WINNERS[spec]
    assert f"winner: {winner}" in output
    winning_file = house.variants[winner].filename
    assert f"+ {winning_file} -> " in output
    # Every file of the version is accounted for, shown or not, with a reason.
    for label, dist in house.variants.items():
        if label != winner:
            assert f"- {dist.filename}: " in output
    # The plain wheel has the winner's tags (and a wider requires-python, so it is not
    # covered): the better-ranked winner is listed under that name (rule 4).
    assert f"- {house.plain.filename}: {winning_file} (" in output
    assert "is shown under the same name" in output


def test_explain_without_a_fingerprint_shows_the_upstream_page_minus_variants(
    upstream: UpstreamServer, house: VariantWheelhouse, tmp_path: Path
) -> None:
    output = _explain(upstream, tmp_path)
    shown = output.split("a legacy client is shown:", 1)[1].split()
    assert house.plain.filename in shown
    assert not set(shown) & house.variant_filenames
    assert f"winner: {NULL}" not in output


def test_explain_refuses_a_bad_spec_naming_it(upstream: UpstreamServer, tmp_path: Path) -> None:
    result = run_proxy_cli(
        [
            "explain",
            PROJECT,
            "--upstream",
            upstream.index_url,
            "--cache-dir",
            str(tmp_path),
            "--hw",
            "cpu=pentium",
        ]
    )
    assert result.returncode == 2
    assert "pentium" in result.stderr and len(result.stderr.strip().splitlines()) == 1
