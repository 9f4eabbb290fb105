"""The local index's pure parts: a project page from directory files, and upload checks."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from proxy.local.checks import (
    Received,
    UploadRejected,
    check_upload,
    presented_token,
    token_matches,
)
from proxy.local.page import LocalFile, build_directory_page, upload_time
from proxy.local.wheel_contents import WheelContents
from proxy.variants.metadata import parse_variants_json

SCHEMA = "https://variants-schema.wheelnext.dev/v0.0.3.json"


def variant_json(label: str, level: str | None, namespaces: tuple[str, ...] = ("x86_64",)) -> bytes:
    variants = {label: {"x86_64": {"level": [level]}} if level else {}}
    document = {
        "$schema": SCHEMA,
        "default-priorities": {"namespace": list(namespaces)},
        "variants": variants,
    }
    return json.dumps(document).encode()


def local(
    path: str, *, variant: bytes | None = None, mtime_ns: int = 1_700_000_000 * 10**9
) -> LocalFile:
    digest = hashlib.sha256(path.encode()).hexdigest()
    is_wheel = path.endswith(".whl")
    return LocalFile(
        path,
        size=100 + len(path),
        mtime_ns=mtime_ns,
        sha256=digest,
        metadata_sha256=hashlib.sha256(b"m" + path.encode()).hexdigest() if is_wheel else None,
        requires_python=">=3.8" if is_wheel else None,
        variant_json=variant,
    )


def url_for(path: str) -> str:
    return f"file:///srv/{path}"


def test_page_lists_every_file_with_hashes_metadata_and_pep700_fields() -> None:
    files = [
        local("demo/demo-1.0-py3-none-any.whl"),
        local("demo/demo-1.0.tar.gz"),
        local("demo/demo-0.9-py3-none-any.whl"),
    ]
    built = build_directory_page("demo", files, url_for)
    page = built.page
    by_name = {dist.filename: dist for dist in page.files}
    assert set(by_name) == {f.filename for f in files}
    wheel = by_name["demo-1.0-py3-none-any.whl"]
    assert wheel.url == "file:///srv/demo/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": files[0].sha256}
    assert wheel.core_metadata == {"sha256": files[0].metadata_sha256}
    assert wheel.requires_python == ">=3.8"
    assert wheel.size == files[0].size
    assert wheel.upload_time == "2023-11-14T22:13:20.000000Z"
    assert by_name["demo-1.0.tar.gz"].core_metadata is False
    assert page.versions == ("0.9", "1.0")
    assert page.api_version == "1.1"
    assert built.built == {}


def test_files_of_other_projects_and_unknown_files_are_left_out() -> None:
    files = [
        local("demo-1.0-py3-none-any.whl"),
        local("other-1.0-py3-none-any.whl"),
        local("README.txt"),
        local("other-1.0-variants.json"),
    ]
    page = build_directory_page("demo", files, url_for).page
    assert [dist.filename for dist in page.files] == ["demo-1.0-py3-none-any.whl"]


def test_a_missing_variants_json_is_built_from_the_wheels_own_files() -> None:
    files = [
        local("v/v-1.0-py3-none-any-x86_64_v3.whl", variant=variant_json("x86_64_v3", "v3")),
        local("v/v-1.0-py3-none-any-x86_64_v2.whl", variant=variant_json("x86_64_v2", "v2")),
        local("v/v-1.0-py3-none-any-null.whl", variant=variant_json("null", None)),
        local("v/v-1.0-py3-none-any.whl"),
    ]
    built = build_directory_page("v", files, url_for)
    assert list(built.built) == ["v/v-1.0-variants.json"]
    body = built.built["v/v-1.0-variants.json"]
    assert set(parse_variants_json(body).variants) == {"x86_64_v3", "x86_64_v2", "null"}
    entry = next(d for d in built.page.files if d.filename == "v-1.0-variants.json")
    assert entry.hashes == {"sha256": hashlib.sha256(body).hexdigest()}
    assert entry.size == len(body)
    assert entry.url == "file:///srv/v/v-1.0-variants.json"
    assert built.page.versions == ("1.0",)


def test_a_variants_json_in_the_directory_is_listed_as_it_is() -> None:
    files = [
        local("v-1.0-py3-none-any-x86_64_v3.whl", variant=variant_json("x86_64_v3", "v3")),
        local("v-1.0-variants.json"),
    ]
    built = build_directory_page("v", files, url_for)
    assert built.built == {}
    assert "v-1.0-variants.json" in {d.filename for d in built.page.files}


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        (None, "has no *.dist-info/variant.json"),
        (b"{not json", "invalid variant.json"),
        (variant_json("x86_64_v3", "v4"), "conflict"),
    ],
)
def test_wheels_that_cannot_be_merged_get_no_variants_json(
    second: bytes | None, problem: str
) -> None:
    files = [
        local("v-1.0-py3-none-any-x86_64_v3.whl", variant=variant_json("x86_64_v3", "v3")),
        local("v-1.0-cp312-cp312-any-x86_64_v3.whl", variant=second),
    ]
    built = build_directory_page("v", files, url_for)
    assert built.built == {}
    assert not any(d.filename.endswith("-variants.json") for d in built.page.files)
    assert len(built.problems) == 1 and problem in built.problems[0]


def test_upload_time_is_utc_iso8601_with_microseconds() -> None:
    assert upload_time(1_500_000_000_123_456_000) == "2017-07-14T02:40:00.123456Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", upload_time(0))


# -- upload checks -----------------------------------------------------------------------------

DATA = b"wheel bytes"
DIGESTS = {
    "sha256": hashlib.sha256(DATA).hexdigest(),
    "blake2_256": hashlib.blake2b(DATA, digest_size=32).hexdigest(),
    "md5": hashlib.md5(DATA).hexdigest(),
}


def received(filename: str, **overrides: str | None) -> Received:
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "Demo_Pkg",
        "version": "1.0",
        "sha256_digest": DIGESTS["sha256"],
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        fields.pop(key, None)
    return Received(
        {k: [v] for k, v in fields.items() if v is not None}, filename, len(DATA), DIGESTS
    )


def contents(
    name: str = "Demo-Pkg", version: str = "1.0", variant: bytes | None = None
) -> WheelContents:
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    return WheelContents("demo_pkg-1.0.dist-info", metadata, variant)


def test_a_good_upload_passes_every_check() -> None:
    checked = check_upload(
        received("demo_pkg-1.0-py3-none-any-x86_64_v3.whl"),
        contents(variant=variant_json("x86_64_v3", "v3")),
    )
    assert (checked.project, checked.version) == ("demo-pkg", "1.0")
    assert checked.variant is not None and list(checked.variant.variants) == ["x86_64_v3"]
    sdist = check_upload(received("demo_pkg-1.0.tar.gz"), None)
    assert sdist.wheel is None and sdist.variant is None


@pytest.mark.parametrize(
    ("filename", "fields", "wheel", "message"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", {":action": "submit"}, contents(), "unsupported :action"),
        ("demo_pkg-1.0.exe", {}, None, "not a wheel or sdist"),
        ("../demo_pkg-1.0.tar.gz", {}, None, "invalid file name"),
        ("demo_pkg-1.0-py3-none-any.whl", {"name": "other"}, contents(), "does not match"),
        ("demo_pkg-1.0-py3-none-any.whl", {"version": "2.0"}, contents(), "does not match"),
        ("demo_pkg-1.0-py3-none-any.whl", {"name": None}, contents(), "name field is missing"),
        ("demo_pkg-1.0-py3-none-any.whl", {"sha256_digest": "0" * 64}, contents(), "sha256_digest"),
        ("demo_pkg-1.0-py3-none-any.whl", {"sha256_digest": None}, contents(), "no sha256_digest"),
        ("demo_pkg-1.0-py3-none-any.whl", {"md5_digest": "0" * 32}, contents(), "md5_digest"),
        ("demo_pkg-1.0-py3-none-any.whl", {}, None, "not a readable wheel"),
        ("demo_pkg-1.0-py3-none-any.whl", {}, contents(name="other"), "METADATA Name"),
        ("demo_pkg-1.0-py3-none-any.whl", {}, contents(version="1.1"), "METADATA Version"),
        (
            "demo_pkg-1.0-py3-none-any.whl",
            {},
            contents(variant=variant_json("x86_64_v3", "v3")),
            "no variant label in its name",
        ),
        ("demo_pkg-1.0-py3-none-any-x86_64_v3.whl", {}, contents(), "has no *.dist-info/variant"),
        (
            "demo_pkg-1.0-py3-none-any-x86_64_v4.whl",
            {},
            contents(variant=variant_json("x86_64_v3", "v3")),
            "'x86_64_v4' of demo_pkg-1.0-py3-none-any-x86_64_v4.whl is not in its variant.json",
        ),
        (
            "demo_pkg-1.0-py3-none-any-x86_64_v3.whl",
            {},
            contents(variant=b'{"variants": 1}'),
            "invalid variant.json",
        ),
    ],
)
def test_a_bad_upload_is_a_400_naming_the_problem(
    filename: str, fields: dict[str, str | None], wheel: WheelContents | None, message: str
) -> None:
    with pytest.raises(UploadRejected) as caught:
        check_upload(received(filename, **fields), wheel)
    assert caught.value.status == 400
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_token_is_taken_from_bearer_or_basic_auth_with_any_user() -> None:
    assert token_matches("Bearer s3cret", "s3cret")
    assert token_matches(_basic("__token__", "s3cret"), "s3cret")
    assert token_matches(_basic("alice", "s3cret"), "s3cret")
    assert not token_matches(_basic("s3cret", "other"), "s3cret")
    assert not token_matches("Bearer wrong", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("Basic !!!", "s3cret")
    assert not token_matches("Bearer ", "")
    assert presented_token(_basic("user", "")) is None
