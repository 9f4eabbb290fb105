"""The local index: a directory upstream that takes uploads from real `twine upload` and
`uv publish`, serves them merged with a public upstream, and gives pip the right variant."""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .builders import build_wheel
from .catalogue import Wheelhouse, publish_public
from .clients import (
    build_marker,
    file_urls,
    http_get,
    pip_install,
    read_page,
    wait_until,
)
from .proxy_process import ProxyLauncher, RunningProxy, proxy_config, run_proxy_cli
from .publishing import (
    NAMESPACES,
    TOKEN,
    TOKEN_ENV,
    multipart_head,
    multipart_upload,
    twine_process,
    twine_upload,
    uv_publish,
    uv_publish_process,
    uv_publish_supported,
    variant_builds,
)
from .upstream_server import UpstreamServer

pytestmark = pytest.mark.e2e


def local_config(
    cache_dir: Path,
    index_dir: Path,
    public: UpstreamServer,
    *,
    upload: bool = True,
    **sections: Any,
) -> dict[str, Any]:
    """The local directory first, then the public upstream."""
    config = proxy_config(cache_dir, [("public", public)], **sections)
    entry: dict[str, Any] = {"name": "local", "path": str(index_dir)}
    if upload:
        entry.update(upload=True, upload_token_env=TOKEN_ENV)
    config["upstreams"].insert(0, entry)
    return config


@pytest.fixture(scope="module")
def token_in_environment() -> Iterator[None]:
    """The proxy processes inherit the upload token's variable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, TOKEN)
        yield


@pytest.fixture(scope="module")
def public(wheelhouse: Wheelhouse) -> Iterator[UpstreamServer]:
    server = UpstreamServer("html").start()
    publish_public(server, wheelhouse)
    yield server
    server.close()


@pytest.fixture(scope="module")
def index_proxy(
    module_proxy: ProxyLauncher,
    public: UpstreamServer,
    token_in_environment: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningProxy:
    index_dir = tmp_path_factory.mktemp("local-index")
    return module_proxy.start(local_config(module_proxy.new_cache_dir(), index_dir, public))


def upload_url(running: RunningProxy) -> str:
    return f"{running.url}/upload/"


def installed_build(running: RunningProxy, prefix: str, project: str, target: Path) -> str:
    pip_install(f"{running.url}{prefix}", [project], target)
    return build_marker(target, project)


def installed_builds(
    running: RunningProxy, project: str, specs: list[str], work: Path
) -> dict[str, str]:
    """Hardware spec -> the build pip installs through `/hw/{spec}/simple/`."""
    return {
        spec: installed_build(running, f"/hw/{spec}/simple/", project, work / spec)
        for spec in specs
    }


def test_twine_uploads_variant_builds_and_pip_installs_the_right_one(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    builds = variant_builds(tmp_path / "dist", "localvar")
    result = twine_upload(upload_url(index_proxy), [b.path for b in builds.values()])
    assert result.returncode == 0, result.describe()

    specs = ["cpu=x86_64_v3", "cpu=x86_64_v2", "cpu=x86_64_v1"]
    assert installed_builds(index_proxy, "localvar", specs, tmp_path) == {
        "cpu=x86_64_v3": "x86_64_v3",
        "cpu=x86_64_v2": "x86_64_v2",
        "cpu=x86_64_v1": "null",
    }
    assert installed_build(index_proxy, "/simple/", "localvar", tmp_path / "none") == "plain"

    native = read_page(f"{index_proxy.url}/native/simple/localvar/")
    names = {entry["filename"] for entry in native["files"]}
    assert names == {b.filename for b in builds.values()} | {"localvar-1.0-variants.json"}
    listed = next(e for e in native["files"] if e["filename"] == "localvar-1.0-variants.json")
    merged = http_get(listed["url"]).json()
    assert set(merged["variants"]) == {"x86_64_v3", "x86_64_v2", "null"}
    assert merged["default-priorities"]["namespace"] == list(NAMESPACES)
    assert merged["variants"]["x86_64_v3"] == {"x86_64": {"level": ["v3"]}}


@pytest.mark.skipif(not uv_publish_supported(), reason="the installed uv has no `uv publish`")
def test_uv_publish_uploads_and_pip_installs_the_right_one(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    builds = variant_builds(tmp_path / "dist", "uvpublished")
    result = uv_publish(upload_url(index_proxy), [b.path for b in builds.values()])
    assert result.returncode == 0, result.describe()
    assert installed_builds(index_proxy, "uvpublished", ["cpu=x86_64_v3"], tmp_path) == {
        "cpu=x86_64_v3": "x86_64_v3"
    }
    refused = uv_publish(upload_url(index_proxy), [builds["plain"].path], token="wrong")
    assert refused.returncode != 0 and "403" in refused.output


def test_an_upload_without_the_token_is_403_even_from_loopback(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "notoken", "1.0")
    refused = twine_upload(upload_url(index_proxy), [wheel.path], password="not-the-token")
    assert refused.returncode != 0
    assert "403" in refused.output, refused.describe()
    bare = multipart_upload(
        upload_url(index_proxy),
        wheel.filename,
        wheel.data,
        name="notoken",
        version="1.0",
        token=None,
    )
    assert bare.status == 403
    assert http_get(index_proxy.page_url("notoken")).status == 404


def test_same_bytes_again_succeed_and_other_bytes_under_that_name_are_409(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    first = build_wheel(tmp_path / "a", "twice", "1.0", build_marker="first")
    second = build_wheel(tmp_path / "b", "twice", "1.0", build_marker="second")
    assert first.filename == second.filename and first.sha256 != second.sha256
    assert twine_upload(upload_url(index_proxy), [first.path]).returncode == 0
    again = twine_upload(upload_url(index_proxy), [first.path])
    assert again.returncode == 0, again.describe()
    clash = twine_upload(upload_url(index_proxy), [second.path])
    assert clash.returncode != 0
    assert "409" in clash.output and "already exists" in clash.output, clash.describe()
    listed = read_page(index_proxy.page_url("twice"))["files"]
    assert [(e["filename"], e["hashes"]["sha256"]) for e in listed] == [
        (first.filename, first.sha256)
    ]


def test_a_conflicting_label_definition_is_409(index_proxy: RunningProxy, tmp_path: Path) -> None:
    good = build_wheel(
        tmp_path / "a",
        "clashing",
        "1.0",
        variant_label="fast",
        variant_properties=["x86_64 :: level :: v3"],
        namespace_priorities=NAMESPACES,
    )
    other = build_wheel(
        tmp_path / "b",
        "clashing",
        "1.0",
        tags="py312-none-any",
        variant_label="fast",
        variant_properties=["x86_64 :: level :: v4"],
        namespace_priorities=NAMESPACES,
    )
    assert twine_upload(upload_url(index_proxy), [good.path]).returncode == 0
    clash = twine_upload(upload_url(index_proxy), [other.path])
    assert clash.returncode != 0 and "409" in clash.output, clash.describe()
    names = set(file_urls(f"{index_proxy.url}/native/simple/clashing/"))
    assert names == {good.filename, "clashing-1.0-variants.json"}


def test_a_file_that_is_not_a_wheel_is_400(index_proxy: RunningProxy) -> None:
    answer = multipart_upload(
        upload_url(index_proxy),
        "junk-1.0-py3-none-any.whl",
        b"not a zip",
        name="junk",
        version="1.0",
    )
    assert answer.status == 400
    assert "junk-1.0-py3-none-any.whl is not a valid distribution" in answer.text
    other = multipart_upload(
        upload_url(index_proxy), "junk-1.0.exe", b"MZ", name="junk", version="1.0"
    )
    assert other.status == 400 and "not a wheel or sdist" in other.text
    assert http_get(index_proxy.page_url("junk")).status == 404


def test_a_name_that_disagrees_with_the_file_is_400(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "honest", "1.0")
    answer = multipart_upload(
        upload_url(index_proxy), wheel.filename, wheel.data, name="/etc/evil", version="1.0"
    )
    assert answer.status == 400
    assert "does not match the file name honest-1.0-py3-none-any.whl" in answer.text
    assert http_get(index_proxy.page_url("honest")).status == 404


def test_a_wheel_whose_label_is_not_in_its_variant_metadata_is_400(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    built = build_wheel(
        tmp_path,
        "mislabel",
        "1.0",
        variant_label="x86_64_v3",
        variant_properties=["x86_64 :: level :: v3"],
        namespace_priorities=NAMESPACES,
    )
    renamed = built.path.with_name("mislabel-1.0-py3-none-any-x86_64_v4.whl")
    shutil.copy(built.path, renamed)
    result = twine_upload(upload_url(index_proxy), [renamed])
    assert result.returncode != 0
    assert "400" in result.output and "not in its variant.json" in result.output, result.describe()
    assert http_get(index_proxy.page_url("mislabel")).status == 404


def test_twenty_concurrent_uploads_to_one_version_all_land(
    index_proxy: RunningProxy, tmp_path: Path
) -> None:
    wheels = [
        build_wheel(
            tmp_path,
            "crowd",
            "1.0",
            variant_label=f"c{i:02d}",
            variant_properties=[f"acme :: build :: b{i:02d}"],
            namespace_priorities=["acme"],
        )
        for i in range(20)
    ]
    # Half by twine, half by uv publish (where it exists), all started at once.
    with_uv = uv_publish_supported()
    url = upload_url(index_proxy)
    processes = [
        (uv_publish_process if with_uv and i % 2 else twine_process)(url, wheel.path)
        for i, wheel in enumerate(wheels)
    ]
    outputs = []
    for process in processes:
        output, _ = process.communicate(timeout=300)
        outputs.append((process.returncode, output))
    assert all(code == 0 for code, _ in outputs), [out for code, out in outputs if code]
    native = read_page(f"{index_proxy.url}/native/simple/crowd/")["files"]
    assert {e["filename"] for e in native} == {w.filename for w in wheels} | {
        "crowd-1.0-variants.json"
    }
    listed = next(e for e in native if e["filename"] == "crowd-1.0-variants.json")
    assert set(http_get(listed["url"]).json()["variants"]) == {f"c{i:02d}" for i in range(20)}


def test_yank_and_remove_through_the_cli(index_proxy: RunningProxy, tmp_path: Path) -> None:
    old = build_wheel(tmp_path, "yanklocal", "1.0")
    new = build_wheel(tmp_path, "yanklocal", "2.0")
    assert twine_upload(upload_url(index_proxy), [old.path, new.path]).returncode == 0
    base = ["--proxy", index_proxy.url, "--token-env", TOKEN_ENV]
    denied = run_proxy_cli(["yank", "yanklocal", new.filename, *base[:2]])
    assert denied.returncode != 0
    yanked = run_proxy_cli(["yank", "yanklocal", new.filename, "--reason", "broken build", *base])
    assert yanked.returncode == 0, yanked.stderr
    entry = {e["filename"]: e for e in read_page(index_proxy.page_url("yanklocal"))["files"]}
    assert entry[new.filename]["yanked"] == "broken build"
    pip_install(index_proxy.index_url, ["yanklocal"], tmp_path / "t")
    assert (tmp_path / "t" / "yanklocal-1.0.dist-info").is_dir()
    removed = run_proxy_cli(["remove", "yanklocal", new.filename, *base])
    assert removed.returncode == 0, removed.stderr
    assert set(file_urls(index_proxy.page_url("yanklocal"))) == {old.filename}
    unknown = run_proxy_cli(["remove", "yanklocal", new.filename, *base])
    assert unknown.returncode != 0 and "404" in unknown.stderr


def test_a_sigkill_during_an_upload_leaves_no_partial_file(
    proxy: ProxyLauncher, public: UpstreamServer, token_in_environment: None, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    running = proxy.start(local_config(proxy.new_cache_dir(), index_dir, public))
    kept = build_wheel(tmp_path / "dist", "halfway", "1.0")
    assert twine_upload(upload_url(running), [kept.path]).returncode == 0
    big = build_wheel(tmp_path / "dist", "halfway", "2.0", payload_size=4 * 1024 * 1024)
    parts = urlsplit(running.url)
    head, _ = multipart_head(
        parts.hostname or "", parts.port or 0, big.filename, big.size, name="halfway", version="2.0"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(head + big.data[: big.size // 2])
        assert wait_until(lambda: any(index_dir.rglob(".*.part")), timeout=30)
        running.kill()
    visible = sorted(
        p.name for p in index_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    assert visible == [kept.filename]
    running.start()
    assert not any(index_dir.rglob(".*.part"))
    for page in (running.page_url("halfway"), f"{running.url}/native/simple/halfway/"):
        assert set(file_urls(page)) == {kept.filename}


def test_a_directory_without_variants_json_serves_the_right_variant(
    proxy: ProxyLauncher, public: UpstreamServer, tmp_path: Path
) -> None:
    wheels_dir = tmp_path / "wheels"
    builds = variant_builds(wheels_dir, "dirvar")
    for side in wheels_dir.glob("*.metadata"):
        side.unlink()  # the proxy reads METADATA from the wheels themselves
    assert not list(wheels_dir.glob("*variants.json"))
    running = proxy.start(local_config(proxy.new_cache_dir(), wheels_dir, public, upload=False))

    specs = ["cpu=x86_64_v3", "cpu=x86_64_v2"]
    assert installed_builds(running, "dirvar", specs, tmp_path) == {
        "cpu=x86_64_v3": "x86_64_v3",
        "cpu=x86_64_v2": "x86_64_v2",
    }
    native = {e["filename"]: e for e in read_page(f"{running.url}/native/simple/dirvar/")["files"]}
    assert set(http_get(native["dirvar-1.0-variants.json"]["url"]).json()["variants"]) == {
        "x86_64_v3",
        "x86_64_v2",
        "null",
    }
    plain = native[builds["plain"].filename]
    assert plain["hashes"] == {"sha256": builds["plain"].sha256}
    assert plain["size"] == builds["plain"].size
    assert plain["upload-time"].endswith("Z")
    metadata = http_get(plain["url"] + ".metadata")
    assert metadata.status == 200 and metadata.body == builds["plain"].metadata
    assert plain["core-metadata"] == {"sha256": hashlib.sha256(metadata.body).hexdigest()}

    later = build_wheel(wheels_dir, "dirvar", "2.0")
    assert wait_until(lambda: later.filename in file_urls(running.page_url("dirvar")), timeout=20)


def test_pins_keep_a_private_name_from_the_public_upstream(
    proxy: ProxyLauncher, public: UpstreamServer, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    private_dir = tmp_path / "private"
    private = build_wheel(private_dir / "secretlib", "secretlib", "1.0", build_marker="local")
    config = local_config(
        proxy.new_cache_dir(), private_dir, public, upload=False, pins={"secretlib": "local"}
    )
    running = proxy.start(config)
    assert set(file_urls(running.page_url("secretlib"))) == {private.filename}
    assert installed_build(running, "/simple/", "secretlib", tmp_path / "t") == "local"
    # Unpinned projects still come from the public upstream.
    assert wheelhouse["demo-lib-1.0"].filename in file_urls(running.page_url("demo-lib"))


def test_an_upload_over_the_size_limit_is_413_naming_it(
    proxy: ProxyLauncher, public: UpstreamServer, token_in_environment: None, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    config = local_config(proxy.new_cache_dir(), index_dir, public)
    config["upstreams"][0]["max_upload_size"] = "64KiB"
    running = proxy.start(config)
    small = build_wheel(tmp_path / "dist", "sized", "1.0")
    big = build_wheel(tmp_path / "dist", "sized", "2.0", payload_size=256 * 1024)
    assert twine_upload(upload_url(running), [small.path]).returncode == 0
    refused = twine_upload(upload_url(running), [big.path])
    assert refused.returncode != 0
    assert "413" in refused.output and "65536 bytes" in refused.output, refused.describe()
    assert set(file_urls(running.page_url("sized"))) == {small.filename}
    assert not any(index_dir.rglob(".*.part"))
