"""The local index's shell: scanning a directory (cached hashes) and publishing into it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from proxy.local import scan as scan_module
from proxy.local.checks import Received, UploadRejected, check_upload
from proxy.local.publish import LocalIndex, remove_partials
from proxy.local.scan import DirectoryScanner
from proxy.local.wheel_contents import WheelContents, read_wheel
from proxy.variants.metadata import parse_variants_json

SCHEMA = "https://variants-schema.wheelnext.dev/v0.0.3.json"


def wheel_bytes(name: str, version: str, label: str | None = None, level: str = "v3") -> bytes:
    dist_info = f"{name}-{version}.dist-info"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", f"BUILD = {label!r}\n")
        archive.writestr(
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n",
        )
        if label is not None:
            document = {
                "$schema": SCHEMA,
                "default-priorities": {"namespace": ["x86_64"]},
                "variants": {label: {"x86_64": {"level": [level]}}},
            }
            archive.writestr(f"{dist_info}/variant.json", json.dumps(document))
    return buffer.getvalue()


def wheel_name(name: str, version: str, label: str | None = None) -> str:
    return f"{name}-{version}-py3-none-any" + (f"-{label}" if label else "") + ".whl"


def test_scan_reads_flat_and_per_project_layouts_and_skips_hidden_files(tmp_path: Path) -> None:
    (tmp_path / wheel_name("flat", "1.0")).write_bytes(wheel_bytes("flat", "1.0"))
    (tmp_path / "Nested_Pkg").mkdir()
    (tmp_path / "Nested_Pkg" / wheel_name("nested_pkg", "2.0")).write_bytes(
        wheel_bytes("nested_pkg", "2.0")
    )
    (tmp_path / "Nested_Pkg" / ".nested_pkg-3.0-py3-none-any.whl.x.part").write_bytes(b"partial")
    (tmp_path / "Nested_Pkg" / wheel_name("intruder", "1.0")).write_bytes(b"x")
    scanner = DirectoryScanner(tmp_path)
    assert scanner.projects() == ["flat", "nested-pkg"]
    flat = scanner.project_files("flat")
    assert [f.path for f in flat] == [wheel_name("flat", "1.0")]
    nested = scanner.project_files("nested-pkg")
    assert [f.path for f in nested] == ["Nested_Pkg/" + wheel_name("nested_pkg", "2.0")]
    data = (tmp_path / nested[0].path).read_bytes()
    assert nested[0].sha256 == hashlib.sha256(data).hexdigest()
    assert nested[0].metadata_sha256 is not None


def test_a_rescan_hashes_only_new_or_changed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real_digest = scan_module.file_digest

    def counting_digest(path: Path) -> str:
        hashed.append(path.name)
        return real_digest(path)

    monkeypatch.setattr(scan_module, "file_digest", counting_digest)
    first = tmp_path / wheel_name("demo", "1.0")
    first.write_bytes(wheel_bytes("demo", "1.0"))
    scanner = DirectoryScanner(tmp_path)
    scanner.project_files("demo")
    scanner.project_files("demo")
    assert hashed == [first.name]
    second = tmp_path / wheel_name("demo", "2.0")
    second.write_bytes(wheel_bytes("demo", "2.0"))
    files = scanner.project_files("demo")
    assert hashed == [first.name, second.name]
    assert {f.filename for f in files} == {first.name, second.name}
    first.write_bytes(wheel_bytes("demo", "1.0", "x86_64_v3"))
    os.utime(first, ns=(1, 1))
    changed = {f.filename: f for f in scanner.project_files("demo")}[first.name]
    assert hashed[-1] == first.name
    assert changed.variant_json is not None


def test_a_yank_file_beside_a_file_yanks_it(tmp_path: Path) -> None:
    path = tmp_path / wheel_name("demo", "1.0")
    path.write_bytes(wheel_bytes("demo", "1.0"))
    (tmp_path / (path.name + ".yanked")).write_text("broken\n")
    (files,) = [DirectoryScanner(tmp_path).project_files("demo")]
    assert files[0].yanked == "broken"


def test_scanner_refuses_paths_that_leave_the_directory(tmp_path: Path) -> None:
    scanner = DirectoryScanner(tmp_path / "root")
    for bad in ("../x.whl", "a/../../x.whl", "", ".hidden.whl", "a//b.whl"):
        with pytest.raises(FileNotFoundError):
            scanner.resolve(bad)


# -- publishing ---------------------------------------------------------------------------------


def received_for(data: bytes, filename: str, name: str, version: str) -> Received:
    digests = {"sha256": hashlib.sha256(data).hexdigest()}
    fields = {
        ":action": ["file_upload"],
        "name": [name],
        "version": [version],
        "sha256_digest": [digests["sha256"]],
    }
    return Received(fields, filename, len(data), digests)


async def upload(index: LocalIndex, data: bytes, filename: str, name: str, version: str) -> bool:
    incoming = index.receive(filename)
    incoming.write(data)
    await asyncio.to_thread(incoming.finish)
    contents: WheelContents = await asyncio.to_thread(read_wheel, str(incoming.path))
    checked = check_upload(received_for(data, filename, name, version), contents)
    return (await index.publish(incoming, checked, contents)).created


async def test_twenty_concurrent_variant_uploads_all_land_in_one_merged_variants_json(
    tmp_path: Path,
) -> None:
    changed: list[str] = []
    index = LocalIndex(DirectoryScanner(tmp_path), 10**6, "TOKEN", changed.append)
    labels = [f"l{i:02d}" for i in range(20)]
    results = await asyncio.gather(
        *(
            upload(
                index,
                wheel_bytes("demo", "1.0", label, level=f"v{i}"),
                wheel_name("demo", "1.0", label),
                "demo",
                "1.0",
            )
            for i, label in enumerate(labels)
        )
    )
    assert all(results)
    folder = tmp_path / "demo"
    assert {p.name for p in folder.iterdir()} == {
        *(wheel_name("demo", "1.0", label) for label in labels),
        "demo-1.0-variants.json",
    }
    merged = parse_variants_json((folder / "demo-1.0-variants.json").read_bytes())
    assert set(merged.variants) == set(labels)
    assert changed == ["demo"] * 20


async def test_same_bytes_change_nothing_other_bytes_are_a_409(tmp_path: Path) -> None:
    index = LocalIndex(DirectoryScanner(tmp_path), 10**6, "TOKEN")
    name = wheel_name("demo", "1.0")
    data = wheel_bytes("demo", "1.0")
    assert await upload(index, data, name, "demo", "1.0")
    stamp = (tmp_path / "demo" / name).stat().st_mtime_ns
    assert not await upload(index, data, name, "demo", "1.0")
    assert (tmp_path / "demo" / name).stat().st_mtime_ns == stamp
    other = data + b"\0"  # a zip with trailing bytes still opens
    with pytest.raises(UploadRejected) as caught:
        await upload(index, other, name, "demo", "1.0")
    assert caught.value.status == 409
    assert (tmp_path / "demo" / name).read_bytes() == data
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [name]  # no temporary left


async def test_a_conflicting_label_definition_is_a_409_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    index = LocalIndex(DirectoryScanner(tmp_path), 10**6, "TOKEN")
    first = wheel_name("demo", "1.0", "fast")
    await upload(index, wheel_bytes("demo", "1.0", "fast", "v3"), first, "demo", "1.0")
    before = (tmp_path / "demo" / "demo-1.0-variants.json").read_bytes()
    clash = "demo-1.0-cp312-cp312-any-fast.whl"
    with pytest.raises(UploadRejected) as caught:
        await upload(index, wheel_bytes("demo", "1.0", "fast", "v4"), clash, "demo", "1.0")
    assert caught.value.status == 409
    assert "'fast'" in str(caught.value)
    assert not (tmp_path / "demo" / clash).exists()
    assert (tmp_path / "demo" / "demo-1.0-variants.json").read_bytes() == before


async def test_the_size_limit_stops_the_upload_with_a_413(tmp_path: Path) -> None:
    index = LocalIndex(DirectoryScanner(tmp_path), 10, "TOKEN")
    incoming = index.receive("demo-1.0.tar.gz")
    with pytest.raises(UploadRejected) as caught:
        incoming.write(b"x" * 11)
    assert caught.value.status == 413 and "10 bytes" in str(caught.value)
    incoming.discard()
    assert list((tmp_path / "demo").iterdir()) == []


async def test_yank_unyank_and_remove(tmp_path: Path) -> None:
    index = LocalIndex(DirectoryScanner(tmp_path), 10**6, "TOKEN")
    name = wheel_name("demo", "1.0")
    await upload(index, wheel_bytes("demo", "1.0"), name, "demo", "1.0")
    await index.yank("demo", name, "broken", undo=False)
    assert index.scanner.project_files("demo")[0].yanked == "broken"
    await index.yank("demo", name, None, undo=True)
    assert index.scanner.project_files("demo")[0].yanked is False
    await index.remove("demo", name)
    assert index.scanner.project_files("demo") == []


def test_unfinished_uploads_are_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / ".demo-1.0.tar.gz.abcd.part").write_bytes(b"half")
    (tmp_path / ".x.part").write_bytes(b"half")
    (tmp_path / "demo" / "demo-1.0.tar.gz").write_bytes(b"kept")
    assert remove_partials(tmp_path) == 2
    assert [p.name for p in (tmp_path / "demo").iterdir()] == ["demo-1.0.tar.gz"]
