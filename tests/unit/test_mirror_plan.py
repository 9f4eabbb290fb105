"""The pure parts of `mirror`: target matrix, platform names, the resolver's lock, offline
views of a page, and the bundle manifest's checks."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.mirror.bundle import BundleError, parse_manifest
from proxy.mirror.held import held_only
from proxy.mirror.resolve import uv_failure
from proxy.mirror.targets import (
    Fingerprint,
    LockError,
    TargetError,
    files_of_lock,
    target_matrix,
    uv_platform,
)
from proxy.simple.model import DistFile, ProjectPage
from proxy.simple.names import normalize_name
from proxy.upstreams.projects import Located, MergedProject
from proxy.urls.links import file_id

SHA = "a" * 64


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("manylinux_2_28_x86_64", "x86_64-manylinux_2_28"),
        ("manylinux2014_aarch64", "aarch64-manylinux_2_17"),
        ("musllinux_1_2_x86_64", "x86_64-unknown-linux-musl"),
        ("macosx_11_0_arm64", "aarch64-apple-darwin"),
        ("win_amd64", "x86_64-pc-windows-msvc"),
        ("x86_64-manylinux_2_31", "x86_64-manylinux_2_31"),
        ("linux", "linux"),
    ],
)
def test_platform_tags_become_uv_targets(tag: str, expected: str) -> None:
    assert uv_platform(tag) == expected


def test_a_bad_platform_is_named() -> None:
    with pytest.raises(TargetError, match="bad platform 'x/y'"):
        uv_platform("x/y")


def test_the_matrix_is_every_fingerprint_python_and_platform() -> None:
    targets = target_matrix(["gpu"], ["cpu=x86_64_v3"], ["3.11", "3.12", "3.11"], [], "3.13")
    assert [(t.fingerprint.index_path, t.python, t.platform) for t in targets] == [
        ("/p/gpu/simple/", "3.11", None),
        ("/p/gpu/simple/", "3.12", None),
        ("/hw/cpu=x86_64_v3/simple/", "3.11", None),
        ("/hw/cpu=x86_64_v3/simple/", "3.12", None),
    ]
    assert targets[0].label == "profile=gpu, Python 3.11, this platform"


def test_no_fingerprint_and_no_python_default_to_plain_pages_and_this_python() -> None:
    (target,) = target_matrix([], [], [], ["win_amd64"], "3.13")
    assert target.fingerprint == Fingerprint("none")
    assert (target.fingerprint.index_path, target.python) == ("/simple/", "3.13")
    assert target.platform == "x86_64-pc-windows-msvc"


def test_a_bad_python_version_is_named() -> None:
    with pytest.raises(TargetError, match="bad Python version '3'"):
        target_matrix([], [], ["3"], [], "3.13")


APP = f"http://p/files/app/sha256-{SHA}"
HASHES = f'hashes = {{ sha256 = "{SHA}" }}'
LOCK = f"""
lock-version = "1.0"
[[packages]]
name = "app"
version = "1.0"
sdist = {{ url = "{APP}/app-1.0.tar.gz", {HASHES} }}
wheels = [{{ url = "{APP}/app-1.0-py3-none-any.whl", {HASHES} }}]
[[packages]]
name = "src-only"
version = "2.0"
sdist = {{ url = "http://p/files/src-only/x/src_only-2.0.tar.gz" }}
"""


def test_the_lock_gives_the_wheels_or_else_the_sdist() -> None:
    pinned = files_of_lock(LOCK)
    assert [(p.project, p.url.rsplit("/", 1)[1], p.sha256) for p in pinned] == [
        ("app", "app-1.0-py3-none-any.whl", SHA),
        ("src-only", "src_only-2.0.tar.gz", None),
    ]


def test_an_unreadable_lock_is_an_error() -> None:
    with pytest.raises(LockError):
        files_of_lock("[[packages]\n")


def test_uv_failure_keeps_the_reason_without_decoration() -> None:
    stderr = (
        "  \u00d7 No solution found when resolving dependencies:\n"
        "  \u2570\u2500\u25b6 Because nope was not found in the package registry, ...\n"
        "hint: try something\n"
    )
    assert uv_failure(stderr) == (
        "No solution found when resolving dependencies: "
        "Because nope was not found in the package registry, ..."
    )


def _merged(*files: DistFile) -> MergedProject:
    page = ProjectPage(name=normalize_name("pkg"), files=files)
    located = {file_id(d): Located(d, None) for d in files}  # type: ignore[arg-type]
    return MergedProject(normalize_name("pkg"), page, located, "v1", True, 0.0)


def test_offline_pages_keep_only_held_files_and_drop_missing_metadata() -> None:
    held = DistFile("pkg-1.0-py3-none-any.whl", "http://u/a.whl", {"sha256": "1" * 64},
                    core_metadata={"sha256": "2" * 64})  # fmt: skip
    gone = DistFile("pkg-1.0.tar.gz", "http://u/a.tar.gz", {"sha256": "3" * 64})
    view = held_only(
        _merged(held, gone),
        lambda located: located.dist is held,
        lambda dist: False,
    )
    assert [d.filename for d in view.page.files] == ["pkg-1.0-py3-none-any.whl"]
    assert view.page.files[0].core_metadata is False
    assert set(view.files) == {file_id(held)}
    assert view.version.startswith("v1+held:") and view.stale is False


PAGE = {
    "kind": "project",
    "upstream": "up",
    "name": "pkg",
    "url": "http://u/pkg/",
    "content_type": "text/html",
    "etag": None,
    "last_modified": None,
    "fetched_at": 1.0,
    "sha256": SHA,
    "size": 3,
}


def _manifest(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "variant-proxy-bundle",
        "bundle_version": 1,
        "pages": [PAGE],
        "files": [{"key": f"sha256-{SHA}", "sha256": SHA, "size": 3}],
    }
    document.update(changes)
    return document


def test_a_valid_manifest_names_each_member_once() -> None:
    manifest = parse_manifest(_manifest())
    assert manifest.members() == {f"pages/{SHA}": 3, f"files/{SHA}": 3}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "zip"}, "not a variant-proxy bundle manifest"),
        ({"bundle_version": 9}, "bundle version 9"),
        ({"files": [{"key": "../../etc", "sha256": SHA, "size": 1}]}, "bad key '../../etc'"),
        ({"files": [{"key": f"sha256-{SHA}", "sha256": "zz", "size": 1}]}, "bad sha256"),
        ({"pages": [{"kind": "evil"}]}, "unknown kind 'evil'"),
        ({"pages": "x"}, "must be lists"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_bad_part(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(BundleError, match=message):
        parse_manifest(_manifest(**changes))
