"""Self-tests of the e2e harness: built files are valid, the upstream speaks both simple APIs
and its knobs do what they say. No proxy involved."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import tomllib
import urllib.error
import zipfile
from pathlib import Path

import pytest

from .builders import (
    BuildError,
    build_sdist,
    build_wheel,
    merged_variants_json,
    write_variants_json,
)
from .catalogue import PAGE_ONLY_REQUIRES_PYTHON, YANKED_REASON, Wheelhouse
from .clients import http_get, read_page
from .upstream_server import JSON_CONTENT_TYPE, Throttle, UpstreamFactory

pytestmark = pytest.mark.e2e


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- builders ----------------------------------------------------------------------------


def test_wheel_record_lists_every_member_with_its_hash(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        "Demo.Thing",
        "2.1",
        tags="py2.py3-none-any",
        requires_python=">=3.9",
        requires_dist=["demo-lib>=1.0"],
        payload_size=1000,
    )
    assert wheel.filename == "demo_thing-2.1-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel.path) as archive:
        record = archive.read("demo_thing-2.1.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, hash_field, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                assert (hash_field, size) == ("", "")
                continue
            data = archive.read(path)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert hash_field == f"sha256={digest.decode()}"
            assert int(size) == len(data)
        assert {line.split(",")[0] for line in record} == set(archive.namelist())
        metadata = archive.read("demo_thing-2.1.dist-info/METADATA")
        wheel_file = archive.read("demo_thing-2.1.dist-info/WHEEL").decode()
        init = archive.read("demo_thing/__init__.py").decode()
        assert len(archive.read("demo_thing/payload.bin")) == 1000
    assert "Tag: py2-none-any\nTag: py3-none-any\n" in wheel_file
    assert b"Requires-Python: >=3.9\n" in metadata
    assert b"Requires-Dist: demo-lib>=1.0\n" in metadata
    assert wheel.metadata == metadata
    assert wheel.metadata_path is not None
    assert wheel.metadata_path.read_bytes() == metadata
    assert "BUILD = 'plain'" in init


def test_variant_wheel_carries_label_and_variant_json(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        "vpkg",
        "1.0",
        tags="cp311-cp311-linux_x86_64",
        variant_label="x8664v3",
        variant_properties=["x86_64 :: level :: v3", "x86_64 :: avx2 :: on"],
    )
    assert wheel.filename == "vpkg-1.0-cp311-cp311-linux_x86_64-x8664v3.whl"
    with zipfile.ZipFile(wheel.path) as archive:
        document = json.loads(archive.read("vpkg-1.0.dist-info/variant.json"))
        init = archive.read("vpkg/__init__.py").decode()
    assert document["default-priorities"] == {"namespace": ["x86_64"]}
    assert document["variants"] == {"x8664v3": {"x86_64": {"level": ["v3"], "avx2": ["on"]}}}
    assert document == wheel.variant_json
    assert "BUILD = 'x8664v3'" in init


def test_invalid_variant_label_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="'Bad!'"):
        build_wheel(tmp_path, "vpkg", "1.0", variant_label="Bad!")


def test_variants_json_merges_every_label(tmp_path: Path) -> None:
    cpu = build_wheel(
        tmp_path, "vpkg", "1.0", variant_label="v3", variant_properties=["x86_64 :: level :: v3"]
    )
    gpu = build_wheel(
        tmp_path,
        "vpkg",
        "1.0",
        variant_label="cu12",
        variant_properties={"nvidia": {"cuda_version_lower_bound": ["12.0"]}},
    )
    null = build_wheel(tmp_path, "vpkg", "1.0", tags="py3-none-any", variant_label="null")
    merged = merged_variants_json([cpu, gpu, null])
    assert merged["default-priorities"]["namespace"] == ["x86_64", "nvidia"]
    assert merged["variants"] == {
        "v3": {"x86_64": {"level": ["v3"]}},
        "cu12": {"nvidia": {"cuda_version_lower_bound": ["12.0"]}},
        "null": {},
    }


def test_upstream_hosts_variant_wheels_and_their_variants_json(
    make_upstream: UpstreamFactory, tmp_path: Path
) -> None:
    wheels = [
        build_wheel(tmp_path, "vpkg", "1.0", variant_label=label, variant_properties=properties)
        for label, properties in (("v3", ["x86_64 :: level :: v3"]), ("null", None))
    ]
    variants_json = write_variants_json(tmp_path, "vpkg", "1.0", wheels)
    assert variants_json.filename == "vpkg-1.0-variants.json"
    upstream = make_upstream("json", publish=False)
    for dist in [*wheels, variants_json]:
        upstream.add_dist(dist)
    listed = {e["filename"]: e for e in read_page(upstream.index_url + "vpkg/")["files"]}
    assert set(listed) == {
        "vpkg-1.0-py3-none-any-v3.whl",
        "vpkg-1.0-py3-none-any-null.whl",
        "vpkg-1.0-variants.json",
    }
    assert "core-metadata" not in listed["vpkg-1.0-variants.json"]
    document = http_get(listed["vpkg-1.0-variants.json"]["url"]).json()
    assert document["variants"] == {"v3": {"x86_64": {"level": ["v3"]}}, "null": {}}


def test_sdist_has_pkg_info_and_in_tree_backend(tmp_path: Path) -> None:
    sdist = build_sdist(tmp_path, "Demo-Src", "3.0", requires_python=">=3.8")
    assert sdist.filename == "demo_src-3.0.tar.gz"
    with tarfile.open(sdist.path) as archive:
        names = set(archive.getnames())
        pyproject = archive.extractfile("demo_src-3.0/pyproject.toml")
        pkg_info = archive.extractfile("demo_src-3.0/PKG-INFO")
        assert pyproject is not None and pkg_info is not None
        build_system = tomllib.loads(pyproject.read().decode())["build-system"]
        assert pkg_info.read() == sdist.metadata
    assert {"demo_src-3.0/backend.py", "demo_src-3.0/demo_src/__init__.py"} <= names
    assert build_system == {"requires": [], "build-backend": "backend", "backend-path": ["."]}
    assert b"Requires-Python: >=3.8\n" in sdist.metadata
    # Reproducible: the same inputs give the same bytes.
    again = build_sdist(tmp_path / "again", "Demo-Src", "3.0", requires_python=">=3.8")
    assert again.data == sdist.data


# ---- upstream server ---------------------------------------------------------------------


def test_html_upstream_page_carries_pep_503_attributes(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("html")
    pyreq = http_get(upstream.index_url + "pyreq/", headers={"Accept": JSON_CONTENT_TYPE})
    assert pyreq.status == 200
    assert (pyreq.header("Content-Type") or "").startswith("text/html")
    assert 'href="../../files/pyreq/pyreq-2.0-py3-none-any.whl#sha256=' in pyreq.text
    assert 'data-requires-python="&gt;=99"' in pyreq.text

    page = read_page(upstream.index_url + "yankee/")
    entries = {entry["filename"]: entry for entry in page["files"]}
    yanked, kept = wheelhouse["yankee-2.0"], wheelhouse["yankee-1.0"]
    assert entries[yanked.filename]["yanked"] == YANKED_REASON
    assert entries[kept.filename]["yanked"] is False
    assert entries[kept.filename]["hashes"] == {"sha256": kept.sha256}
    assert entries[kept.filename]["core-metadata"] == {"sha256": _sha256(kept.metadata)}
    assert entries[kept.filename]["url"] == upstream.base_url + upstream.file_path(kept.filename)


@pytest.mark.parametrize("absolute_urls", [False, True], ids=["relative", "absolute"])
def test_json_upstream_page_carries_pep_691_and_700_fields(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse, absolute_urls: bool
) -> None:
    upstream = make_upstream("json", absolute_urls=absolute_urls)
    response = http_get(upstream.index_url + "pyreq/", headers={"Accept": "text/html"})
    assert response.header("Content-Type") == JSON_CONTENT_TYPE
    document = response.json()
    assert document["meta"] == {"api-version": "1.1"}
    assert document["name"] == "pyreq"
    assert document["versions"] == ["1.0", "2.0"]
    entries = {entry["filename"]: entry for entry in document["files"]}
    new, old = wheelhouse["pyreq-2.0"], wheelhouse["pyreq-1.0"]
    assert entries[new.filename]["requires-python"] == PAGE_ONLY_REQUIRES_PYTHON
    assert entries[old.filename]["size"] == old.size
    assert entries[old.filename]["upload-time"].endswith("Z")
    assert entries[old.filename]["core-metadata"] == {"sha256": _sha256(old.metadata)}
    assert entries[old.filename]["url"].startswith(upstream.base_url) is absolute_urls
    resolved = read_page(upstream.index_url + "pyreq/")["files"]
    urls = {entry["filename"]: entry["url"] for entry in resolved}
    assert http_get(urls[old.filename]).body == old.data


@pytest.mark.parametrize("mode", ["html", "json"])
def test_upstream_root_index_lists_projects(make_upstream: UpstreamFactory, mode: str) -> None:
    upstream = make_upstream(mode)
    body = http_get(upstream.index_url).text
    if mode == "json":
        names = {project["name"] for project in json.loads(body)["projects"]}
        assert {"demo-app", "my-pkg", "yankee"} <= names
    else:
        assert '<a href="demo-app/">demo-app</a>' in body


def test_upstream_answers_304_to_conditional_requests(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("html")
    url = upstream.index_url + "demo-lib/"
    first = http_get(url)
    etag, modified = first.header("ETag"), first.header("Last-Modified")
    assert etag is not None and modified is not None
    assert http_get(url, headers={"If-None-Match": etag}).status == 304
    assert http_get(url, headers={"If-Modified-Since": modified}).status == 304
    assert upstream.not_modified("/simple/demo-lib/") == 2
    wheel = wheelhouse["demo-lib-1.0"]
    file_url = upstream.base_url + upstream.file_path(wheel.filename)
    file_etag = http_get(file_url).header("ETag")
    assert file_etag is not None
    assert http_get(file_url, headers={"If-None-Match": file_etag}).status == 304
    # A change to the project changes its page, so the old validator no longer matches.
    upstream.set_yanked(wheel.filename, "changed")
    changed = http_get(url, headers={"If-None-Match": etag})
    assert changed.status == 200
    assert 'data-yanked="changed"' in changed.text
    assert upstream.count("/simple/demo-lib/") == 4


def test_upstream_serves_files_metadata_and_ranges(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("json")
    wheel = wheelhouse["fragile-1.0"]
    url = upstream.base_url + upstream.file_path(wheel.filename)
    assert http_get(url).body == wheel.data
    assert http_get(url + ".metadata").body == wheel.metadata
    partial = http_get(url, headers={"Range": "bytes=10-19"})
    assert partial.status == 206
    assert partial.body == wheel.data[10:20]
    assert partial.header("Content-Range") == f"bytes 10-19/{wheel.size}"
    tail = http_get(url, headers={"Range": "bytes=-22"})
    assert tail.body == wheel.data[-22:]
    assert upstream.count(upstream.file_path(wheel.filename)) == 3
    # Counted once the last byte is written, which may be just after the client has it all.
    assert upstream.wait_completed(upstream.file_path(wheel.filename), 3, timeout=5)
    sdist = wheelhouse["demo-src-1.0"]
    assert http_get(upstream.base_url + upstream.metadata_path(sdist.filename)).status == 404


def test_upstream_down_and_stopped(make_upstream: UpstreamFactory) -> None:
    upstream = make_upstream("html")
    page = upstream.index_url + "demo-lib/"
    upstream.down = True
    assert http_get(page).status == 503
    upstream.down = False
    assert http_get(page).status == 200
    port = upstream.port
    upstream.stop()
    with pytest.raises(urllib.error.URLError) as refused:
        http_get(page)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    upstream.start()
    assert upstream.port == port
    assert http_get(page).status == 200


def test_upstream_corrupt_file_does_not_match_listed_hash(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("html")
    wheel = wheelhouse["fragile-1.0"]
    url = upstream.base_url + upstream.file_path(wheel.filename)
    damaged = upstream.corrupt(wheel.filename)
    served = http_get(url).body
    assert served == damaged
    assert len(served) == wheel.size
    assert _sha256(served) != wheel.sha256
    listed = {e["filename"]: e for e in read_page(upstream.index_url + "fragile/")["files"]}
    assert listed[wheel.filename]["hashes"] == {"sha256": wheel.sha256}
    upstream.repair(wheel.filename)
    assert http_get(url).body == wheel.data


def test_upstream_throttle_still_sends_whole_file(
    make_upstream: UpstreamFactory, wheelhouse: Wheelhouse
) -> None:
    upstream = make_upstream("html")
    upstream.throttle = Throttle(chunk_size=64 * 1024, delay=0.001)
    wheel = wheelhouse["bulky-1.0"]
    path = upstream.file_path(wheel.filename)
    assert http_get(upstream.base_url + path).body == wheel.data
    assert upstream.wait_completed(path, 1, timeout=5)


def test_upstream_redirects_non_normalised_names(make_upstream: UpstreamFactory) -> None:
    upstream = make_upstream("html")
    redirect = http_get(upstream.index_url + "My_Pkg/")
    assert redirect.status == 301
    assert redirect.header("Location") == "/simple/my-pkg/"
    assert http_get(upstream.index_url + "no-such-project/").status == 404
